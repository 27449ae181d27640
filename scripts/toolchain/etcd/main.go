// etcd's own main, over the published go.etcd.io/etcd/server/v3 module: the repository's root module
// (which holds main.go) carries replace directives, so `go install` of it at a version is refused.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
