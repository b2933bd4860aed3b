package k8smeta

import (
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Resolver answers, for a pid, what its container and pod are, from the
// cgroup cache and whichever of the Docker client and Kubernetes
// informers are there. Safe for concurrent use; it never waits for I/O
// other than one read of /proc/PID/cgroup per pid.
type Resolver struct {
	cgroups *CgroupCache
	docker  *Docker // nil: no runtime names
	kube    *Kube   // nil: no Kubernetes metadata

	none, container, pod atomic.Uint64
}

// NewResolver combines the sources; docker and kube may be nil.
func NewResolver(cgroups *CgroupCache, docker *Docker, kube *Kube) *Resolver {
	return &Resolver{cgroups: cgroups, docker: docker, kube: kube}
}

// Meta is what is known about one pid's container and pod.
type Meta struct {
	Cgroup
	// Container is the runtime's answer; zero until the Docker client has
	// fetched it, and always without a Docker client.
	Container Container
	// Pod is the pod the container belongs to, nil when none is known.
	Pod *Pod
	// PodContainer is the pod's container with this id; zero when the
	// pod was found by its UID before the kubelet reported the id.
	PodContainer PodContainer
	// Workload is the pod's owner chain.
	Workload Workload
}

// Lookup returns what is known about pid now. Metadata that is still
// being fetched is absent, and is there on a later Lookup.
func (r *Resolver) Lookup(pid uint32) Meta {
	m := Meta{Cgroup: r.cgroups.Lookup(pid)}
	if m.ContainerID == "" {
		r.none.Add(1)
		return m
	}
	switch m.Runtime {
	case RuntimeContainerd, RuntimeCRIO, RuntimePodman:
		// Not Docker's: do not ask it.
	default:
		if r.docker != nil {
			m.Container, _ = r.docker.Lookup(m.ContainerID)
		}
	}
	if r.kube != nil {
		var ok bool
		if m.Pod, ok = r.kube.PodByContainer(m.ContainerID); ok {
			m.PodContainer, _ = m.Pod.Container(m.ContainerID)
		} else if m.PodUID != "" {
			if m.Pod, ok = r.kube.PodByUID(m.PodUID); ok && len(m.Pod.Containers) == 1 {
				// The kubelet has not reported the id yet; with one
				// container there is no doubt which it is.
				m.PodContainer = m.Pod.Containers[0]
			}
		}
		if m.Pod != nil {
			m.Workload = r.kube.Workload(m.Pod)
		}
	}
	if m.Pod != nil {
		r.pod.Add(1)
	} else {
		r.container.Add(1)
	}
	return m
}

// Forget says pid exited (see CgroupCache.Forget).
func (r *Resolver) Forget(pid uint32) { r.cgroups.Forget(pid) }

// ResolverStats counts Lookup outcomes: no container, a container outside
// any known pod, a pod.
type ResolverStats struct{ None, Container, Pod uint64 }

// Stats returns the counters.
func (r *Resolver) Stats() ResolverStats {
	return ResolverStats{None: r.none.Load(), Container: r.container.Load(), Pod: r.pod.Load()}
}

// ServiceName is the service the pid's container says it is, by
// precedence: OTEL_SERVICE_NAME in the container's environment (the pod
// spec's literal value, else the runtime's), the pod's
// app.kubernetes.io/name label, its owner's name (Deployment, CronJob,
// StatefulSet, DaemonSet, Job, ReplicaSet), the container's name. Empty
// when none is known: the caller falls back to the executable's name.
func (m Meta) ServiceName() string {
	for _, s := range []string{m.PodContainer.ServiceName, m.Container.ServiceName} {
		if s != "" {
			return s
		}
	}
	if m.Pod != nil {
		if m.Pod.AppName != "" {
			return m.Pod.AppName
		}
		if n := m.Workload.Name(); n != "" {
			return n
		}
	}
	if m.PodContainer.Name != "" {
		return m.PodContainer.Name
	}
	return m.Container.Name
}

// Attributes returns the resource attributes of m, by semconv name:
// container.*, k8s.* and service.namespace (the pod's namespace).
// service.name is not among them; see ServiceName.
func (m Meta) Attributes() []attribute.KeyValue {
	return m.AppendAttributes(nil)
}

// AppendAttributes appends Attributes to dst.
func (m Meta) AppendAttributes(dst []attribute.KeyValue) []attribute.KeyValue {
	if m.ContainerID == "" {
		return dst
	}
	dst = append(dst, semconv.ContainerIDKey.String(m.ContainerID))
	if m.Runtime != RuntimeUnknown {
		dst = append(dst, semconv.ContainerRuntimeNameKey.String(m.Runtime))
	}
	if name := m.containerName(); name != "" {
		dst = append(dst, semconv.ContainerNameKey.String(name))
	}
	image, tag := m.Container.ImageName, m.Container.ImageTag
	if image == "" {
		image, tag = SplitImage(m.PodContainer.Image)
	}
	if image != "" {
		dst = append(dst, semconv.ContainerImageNameKey.String(image))
		if tag != "" {
			dst = append(dst, semconv.ContainerImageTagsKey.StringSlice([]string{tag}))
		}
	}
	p := m.Pod
	if p == nil {
		return dst
	}
	dst = append(dst,
		semconv.K8SNamespaceNameKey.String(p.Namespace),
		semconv.K8SPodNameKey.String(p.Name),
		semconv.K8SPodUIDKey.String(p.UID),
	)
	if m.PodContainer.Name != "" {
		dst = append(dst, semconv.K8SContainerNameKey.String(m.PodContainer.Name))
	}
	if p.NodeName != "" {
		dst = append(dst, semconv.K8SNodeNameKey.String(p.NodeName))
	}
	w := m.Workload
	for _, kv := range []struct {
		key   attribute.Key
		value string
	}{
		{semconv.K8SReplicaSetNameKey, w.ReplicaSet},
		{semconv.K8SDeploymentNameKey, w.Deployment},
		{semconv.K8SStatefulSetNameKey, w.StatefulSet},
		{semconv.K8SDaemonSetNameKey, w.DaemonSet},
		{semconv.K8SJobNameKey, w.Job},
		{semconv.K8SCronJobNameKey, w.CronJob},
	} {
		if kv.value != "" {
			dst = append(dst, kv.key.String(kv.value))
		}
	}
	return append(dst, semconv.ServiceNamespaceKey.String(p.Namespace))
}

// containerName is the runtime's name for the container, else the pod
// spec's.
func (m Meta) containerName() string {
	if m.Container.Name != "" {
		return m.Container.Name
	}
	return m.PodContainer.Name
}
