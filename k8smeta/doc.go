// Package k8smeta resolves a pid to the container, pod and owner it runs
// in, for the resource of the spans it takes part in. It is a side input:
// it never sees captured bytes, and nothing in it waits on the network
// when asked.
//
// Three sources, each usable alone:
//
//   - CgroupCache: pid -> Cgroup (container id, pod UID, runtime), parsed
//     from /proc/PID/cgroup once per pid (ParseCgroup: cgroup v1, v2 and
//     the hybrid of both; Docker, containerd/CRI, CRI-O and podman, with
//     the cgroupfs and systemd drivers). Forget(pid) on exit; entries
//     stay ExitGrace longer, and the cache is bounded.
//   - Docker: container id -> Container (name, image, OTEL_SERVICE_NAME of
//     its configured env), from the Engine API's inspect over its unix
//     socket, read-only. Lookup never blocks: it answers from the cache
//     and starts one background fetch for an id it has not seen.
//   - Kube: informers filled from the API server: this node's pods
//     (field selector spec.nodeName=NodeName), indexed by container id,
//     pod UID and pod IP; the cluster's Services and EndpointSlices,
//     indexed by IP; ReplicaSets and Jobs for owner chains
//     (ReplicaSet -> Deployment, Job -> CronJob). A transform strips
//     each object to what is read (no managed fields, annotations, or
//     env other than a literal OTEL_SERVICE_NAME). KubeFromEnv builds one
//     from in-cluster config or $KUBECONFIG and $NODE_NAME, or says in
//     one line why Kubernetes metadata is off.
//
// A Resolver combines them: Lookup(pid) returns a Meta, whose Attributes
// are the resource attributes by semconv name (container.*, k8s.*,
// service.namespace) and whose ServiceName is the service by precedence:
// OTEL_SERVICE_NAME in the container's env, the app.kubernetes.io/name
// label, the owner's name, the container's name, else "" (the caller
// falls back to the executable).
//
// Wiring, in order:
//
//	cg := k8smeta.NewCgroupCache(k8smeta.CgroupConfig{ProcRoot: "/proc"})
//	var docker *k8smeta.Docker // when the socket exists
//	if _, err := os.Stat(k8smeta.DefaultDockerSocket); err == nil {
//		docker = k8smeta.NewDocker(k8smeta.DockerConfig{})
//		defer docker.Close()
//	}
//	kube, why := k8smeta.KubeFromEnv()
//	if kube != nil {
//		kube.Start()
//		defer kube.Stop()
//	} else {
//		slog.Info(why)
//	}
//	r := k8smeta.NewResolver(cg, docker, kube)
//	// per process, when its first exchange is built:
//	m := r.Lookup(pid); attrs, service := m.Attributes(), m.ServiceName()
//	// on the exit event:
//	r.Forget(pid)
//
// Lookups cost map reads under short locks (and one /proc read per new
// pid), so they belong where a process is looked up per connection or
// exchange, not per event.
//
// Memory: the pod informer holds only this node's pods, about 4.4 KiB
// each after the transform (TestPodCacheMemory, 10,000 pods); Services,
// EndpointSlices, ReplicaSets and Jobs are cluster-wide, 1.2 to 2.1 KiB
// each (TestClusterCacheMemory). Both tests fail above a bound.
//
// The informers need list and watch (no get) on pods, services,
// endpointslices.discovery.k8s.io, replicasets.apps and jobs.batch. When
// the ReplicaSet informer cannot list, a Deployment is still named from
// the ReplicaSet's name less the pod's pod-template-hash; a CronJob is
// named only from its Job.
//
// Pids are those of the root pid namespace and ProcRoot must be the
// host's /proc (hostPID in a DaemonSet).
package k8smeta
