// The pod sandbox ("pause") process of the end-to-end suite's node: no registry is reachable here, so
// the CRI's sandbox image is built locally around this (scripts/build-image.sh). It holds the pod's
// namespaces open and exits on SIGTERM or SIGINT, like Kubernetes' own pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
