// cert-manager's controller, over the published github.com/cert-manager/cert-manager module.
//
// Why this file exists: upstream's binary lives in a separate module
// (github.com/cert-manager/cert-manager/cmd/controller) that is not published on the Go module proxy,
// so it cannot be `go install`ed at a version. The controllers themselves are in the published module's
// pkg/ and register themselves with controller.Known() on import; this main does in essence what
// upstream's cmd/controller/app does (build a ContextFactory, construct the known controllers, start the
// shared informer factories, run until SIGTERM), minus what the tests don't need: no leader election
// (one instance per test control plane), no metrics/healthz servers, no config file, no ACME, Vault or
// Venafi issuers, no ingress/gateway shims, no CertificateSigningRequest controllers.
//
// Flags: --kubeconfig, --namespace, --cluster-resource-namespace, --controllers, --feature-gates, --v.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"

	// Each of these registers its controller in controller.Known() from an init function.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The (Cluster)Issuer kinds the issuers controllers can set up and mark Ready.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		opts        controller.ContextOptions
		controllers string
		workers     int
		gates       string
	)
	flag.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to manage (required)")
	flag.StringVar(&opts.Namespace, "namespace", "", "watch only this namespace (default: all; the clusterissuers controller then does not run)")
	flag.StringVar(&opts.ClusterResourceNamespace, "cluster-resource-namespace", "kube-system", "namespace holding the Secrets that ClusterIssuers refer to")
	flag.StringVar(&controllers, "controllers", "*", "comma-separated controllers to run, * for all compiled in")
	flag.IntVar(&workers, "concurrent-workers", 5, "workers per controller")
	flag.StringVar(&gates, "feature-gates", "", "cert-manager feature gates, as in key1=true,key2=false")
	klog.InitFlags(flag.CommandLine) // --v and the other klog flags
	flag.Parse()
	if opts.Kubeconfig == "" {
		return fmt.Errorf("--kubeconfig is required")
	}
	if gates != "" {
		if err := utilfeature.DefaultMutableFeatureGate.Set(gates); err != nil {
			return fmt.Errorf("--feature-gates: %w", err)
		}
	}
	// upstream's defaults (internal/apis/config/controller/v1alpha1/defaults.go)
	opts.KubernetesAPIQPS, opts.KubernetesAPIBurst = 20, 50
	opts.CertificateRequestMinimumBackoffDuration = time.Hour
	opts.CertificateRequestMaximumBackoffDuration = 32 * time.Hour

	logf.InitLogs()
	defer logf.FlushLogs()
	rootCtx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	rootCtx = logf.NewContext(rootCtx, logf.Log, "controller")
	log := logf.FromContext(rootCtx)

	factory, err := controller.NewContextFactory(rootCtx, opts)
	if err != nil {
		return err
	}
	// Every Context the factory builds shares the same informer factories; this one starts them.
	shared, err := factory.Build()
	if err != nil {
		return err
	}

	wanted := strings.Split(controllers, ",")
	g, gctx := errgroup.WithContext(rootCtx)
	for name, construct := range controller.Known() {
		if !slices.Contains(wanted, "*") && !slices.Contains(wanted, name) {
			continue
		}
		if opts.Namespace != "" && name == clusterissuers.ControllerName {
			continue
		}
		ctrl, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing controller %s: %w", name, err)
		}
		log.Info("starting controller", "controller", name)
		g.Go(func() error {
			if err := ctrl.Run(workers, gctx); err != nil {
				return fmt.Errorf("controller %s: %w", name, err)
			}
			return nil
		})
	}

	// Informers are started after the controllers registered theirs (the factories only start
	// informers that were asked for).
	shared.SharedInformerFactory.Start(gctx.Done())
	shared.KubeSharedInformerFactory.Start(gctx.Done())
	g.Go(func() error {
		// The readiness line test/support/cert-manager.ts waits for: from here on, every controller
		// sees the cluster's Issuers, Certificates, CertificateRequests and Secrets.
		synced := map[string]bool{}
		for t, ok := range shared.SharedInformerFactory.WaitForCacheSync(gctx.Done()) {
			synced[t.String()] = ok
		}
		maps.Copy(synced, shared.KubeSharedInformerFactory.WaitForCacheSync(gctx.Done()))
		for informer, ok := range synced {
			if !ok && gctx.Err() == nil {
				return fmt.Errorf("informer %s did not sync", informer)
			}
		}
		if gctx.Err() == nil {
			log.Info("informer caches synced, controllers running")
		}
		return nil
	})
	err = g.Wait()
	shared.KubeSharedInformerFactory.Shutdown()
	shared.SharedInformerFactory.Shutdown()
	log.Info("control loops exited")
	return err
}
