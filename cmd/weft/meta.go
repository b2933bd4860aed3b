package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftrace/weft/correlate"
	"github.com/weftrace/weft/k8smeta"
	"github.com/weftrace/weft/procmeta"
)

var (
	_ procmeta.Enricher   = (*k8smeta.Resolver)(nil)
	_ correlate.PeerNamer = (*k8smeta.Resolver)(nil)
)

// metadata is the container and Kubernetes side input: a resolver over the
// cgroup cache, the Docker client when its socket exists, and the
// Kubernetes informers when a cluster is reachable.
type metadata struct {
	resolver *k8smeta.Resolver
	docker   *k8smeta.Docker // nil: no Docker socket
	kube     *k8smeta.Kube   // nil: Kubernetes metadata off
	cancel   context.CancelFunc
	done     chan struct{}
}

// startMetadata starts what the environment allows; it never fails.
// Outside Kubernetes it logs once why Kubernetes metadata is off.
// getenv is only asked for NODE_NAME's use as host.name; the Kubernetes
// client reads its own variables (KUBERNETES_SERVICE_HOST, KUBECONFIG,
// NODE_NAME).
func startMetadata(cfg config, log *slog.Logger) *metadata {
	// client-go logs through klog: to weft's log, not raw to stderr.
	klog.SetSlogLogger(log.With("component", "client-go"))
	md := &metadata{done: make(chan struct{})}
	cg := k8smeta.NewCgroupCache(k8smeta.CgroupConfig{})
	if cfg.dockerSocket != "" {
		if _, err := os.Stat(cfg.dockerSocket); err == nil {
			md.docker = k8smeta.NewDocker(k8smeta.DockerConfig{Socket: cfg.dockerSocket})
			log.Debug("docker metadata on", "socket", cfg.dockerSocket)
		} else {
			log.Debug("docker metadata off", "socket", cfg.dockerSocket, "err", err)
		}
	}
	kube, why := k8smeta.KubeFromEnv()
	if kube == nil {
		log.Info(why)
		close(md.done)
	} else {
		md.kube = kube
		kube.Start()
		var ctx context.Context
		ctx, md.cancel = context.WithCancel(context.Background())
		go func() {
			defer close(md.done)
			start := time.Now()
			if kube.WaitForSync(ctx) {
				log.Info("Kubernetes metadata on", "node", kube.NodeName(), "synced_in", time.Since(start).Round(time.Millisecond))
			}
		}()
	}
	md.resolver = k8smeta.NewResolver(cg, md.docker, md.kube)
	return md
}

// peerNames is the resolver when Kubernetes metadata is on, else nil (an
// untyped nil: correlate then asks nobody).
func (md *metadata) peerNames() correlate.PeerNamer {
	if md.kube == nil {
		return nil
	}
	return md.resolver
}

// stop ends the informers and the Docker client's fetches.
func (md *metadata) stop() {
	if md.cancel != nil {
		md.cancel()
	}
	<-md.done
	if md.kube != nil {
		md.kube.Stop()
	}
	if md.docker != nil {
		md.docker.Close()
	}
}

// hostName is host.name for every process: the node's name when weft runs
// in a pod (whose own host name is the pod's), else the machine's.
func hostName(getenv func(string) string) string {
	if node := getenv("NODE_NAME"); node != "" && getenv("KUBERNETES_SERVICE_HOST") != "" {
		return node
	}
	h, _ := os.Hostname()
	return h
}
