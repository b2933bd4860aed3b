package k8smeta

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Label keys read from pods.
const (
	labelAppName         = "app.kubernetes.io/name"
	labelPodTemplateHash = "pod-template-hash" // set by the Deployment controller
	envServiceName       = "OTEL_SERVICE_NAME"
)

// KubeConfig configures a Kube. NodeName is required.
type KubeConfig struct {
	// NodeName scopes the pod informer to the pods of this node
	// (spec.nodeName); the DaemonSet passes it in as $NODE_NAME.
	NodeName string
	// Resync is the informers' resync period; zero means none.
	Resync time.Duration
}

// Pod is what weft keeps of a pod on this node. A Pod is never changed
// once published: an update of the pod publishes a new one.
type Pod struct {
	Name, Namespace, UID, NodeName string
	// IPs are the pod's IPs; empty for host-network pods, whose IPs are
	// the node's.
	IPs []netip.Addr
	// AppName is the app.kubernetes.io/name label.
	AppName string
	// Owner is the pod's controller (or first) owner reference; Kind is
	// empty for a bare pod.
	Owner OwnerRef
	// templateHash is the pod-template-hash label, for naming the
	// Deployment when its ReplicaSet is not (yet) known.
	templateHash string
	// Containers are the pod's containers, init and ephemeral ones
	// included, as far as the kubelet has reported them.
	Containers []PodContainer
}

// OwnerRef names an owner of an object.
type OwnerRef struct{ Kind, Name string }

// PodContainer is one container of a pod.
type PodContainer struct {
	Name string
	// ID is the runtime's container id with the "containerd://" (or other
	// runtime) prefix removed; empty until the container started.
	ID string
	// Image is the image as the kubelet reports it.
	Image string
	// ServiceName is OTEL_SERVICE_NAME when the pod spec sets it to a
	// literal value for this container (not from a ConfigMap or field).
	ServiceName string
}

// Container returns the pod's container with the given runtime id.
func (p *Pod) Container(id string) (PodContainer, bool) {
	for _, c := range p.Containers {
		if c.ID == id && id != "" {
			return c, true
		}
	}
	return PodContainer{}, false
}

// Workload is a pod's owner chain, resolved as far as weft can see it.
type Workload struct {
	ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob string
	// Other is an owner of any other kind (a ReplicationController, a
	// custom resource such as an Argo Rollout).
	Other OwnerRef
}

// Name is the name of the outermost owner: the Deployment over its
// ReplicaSet, the CronJob over its Job; empty for a bare pod.
func (w Workload) Name() string {
	for _, n := range []string{w.Deployment, w.CronJob, w.StatefulSet, w.DaemonSet, w.Job, w.ReplicaSet, w.Other.Name} {
		if n != "" {
			return n
		}
	}
	return ""
}

// Service names a Kubernetes Service.
type Service struct{ Namespace, Name string }

// Kube holds node-scoped pod metadata and cluster-wide Service addresses,
// kept current by informers. Lookups read maps under a read lock and
// never call the API server. Safe for concurrent use.
type Kube struct {
	cfg     KubeConfig
	node    informers.SharedInformerFactory // pods of this node
	cluster informers.SharedInformerFactory // services, endpoint slices, replica sets, jobs
	rs      appslisters.ReplicaSetLister
	jobs    batchlisters.JobLister
	synced  []cache.InformerSynced
	stop    chan struct{}
	once    sync.Once

	mu          sync.RWMutex
	pods        map[string]*Pod // by namespace/name
	byUID       map[string]*Pod
	byContainer map[string]*Pod
	byIP        map[netip.Addr]*Pod
	svcIPs      map[netip.Addr][]ipService
	svcKeys     map[string][]netip.Addr // what each Service or EndpointSlice put in svcIPs
}

// ipService is one source's claim that an IP belongs to a Service.
type ipService struct {
	source string // "svc/ns/name" or "eps/ns/name"
	svc    Service
}

// offPrefix starts every reason KubeFromEnv gives for running without
// Kubernetes metadata.
const offPrefix = "Kubernetes metadata off: "

// KubeFromEnv makes a Kube when weft can reach a cluster: in-cluster
// config (a pod's service account) first, then $KUBECONFIG; the node is
// $NODE_NAME. Otherwise it returns a nil Kube and one line to log,
// "Kubernetes metadata off: <why>". Start the Kube to fill it.
func KubeFromEnv() (*Kube, string) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		path := os.Getenv("KUBECONFIG")
		switch {
		case path != "":
			cfg, err = clientcmd.BuildConfigFromFlags("", path)
			if err != nil {
				return nil, offPrefix + "KUBECONFIG " + path + ": " + err.Error()
			}
		case errors.Is(err, rest.ErrNotInCluster):
			return nil, offPrefix + "not in a pod (no KUBERNETES_SERVICE_HOST) and KUBECONFIG is not set"
		default:
			return nil, offPrefix + "in-cluster config: " + err.Error()
		}
	}
	node := os.Getenv("NODE_NAME")
	if node == "" {
		return nil, offPrefix + "NODE_NAME is not set (set it from the downward API, fieldRef spec.nodeName)"
	}
	cfg.UserAgent = "weft"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, offPrefix + "client for " + cfg.Host + ": " + err.Error()
	}
	return NewKube(cs, KubeConfig{NodeName: node}), ""
}

// NewKube makes a Kube over a clientset; it does nothing until Start.
func NewKube(cs kubernetes.Interface, cfg KubeConfig) *Kube {
	k := &Kube{
		cfg:         cfg,
		stop:        make(chan struct{}),
		pods:        make(map[string]*Pod),
		byUID:       make(map[string]*Pod),
		byContainer: make(map[string]*Pod),
		byIP:        make(map[netip.Addr]*Pod),
		svcIPs:      make(map[netip.Addr][]ipService),
		svcKeys:     make(map[string][]netip.Addr),
	}
	nodeSelector := fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
	k.node = informers.NewSharedInformerFactoryWithOptions(cs, cfg.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = nodeSelector }),
		informers.WithTransform(strip))
	k.cluster = informers.NewSharedInformerFactoryWithOptions(cs, cfg.Resync, informers.WithTransform(strip))

	pods := k.node.Core().V1().Pods().Informer()
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.setPod(obj) },
		UpdateFunc: func(_, obj any) { k.setPod(obj) },
		DeleteFunc: func(obj any) { k.deletePod(obj) },
	})
	svcs := k.cluster.Core().V1().Services().Informer()
	_, _ = svcs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.setService(obj) },
		UpdateFunc: func(_, obj any) { k.setService(obj) },
		DeleteFunc: func(obj any) { k.deleteSource(obj, "svc/") },
	})
	slices := k.cluster.Discovery().V1().EndpointSlices().Informer()
	_, _ = slices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.setSlice(obj) },
		UpdateFunc: func(_, obj any) { k.setSlice(obj) },
		DeleteFunc: func(obj any) { k.deleteSource(obj, "eps/") },
	})
	rs := k.cluster.Apps().V1().ReplicaSets()
	jobs := k.cluster.Batch().V1().Jobs()
	k.rs, k.jobs = rs.Lister(), jobs.Lister()
	k.synced = []cache.InformerSynced{pods.HasSynced, svcs.HasSynced, slices.HasSynced, rs.Informer().HasSynced, jobs.Informer().HasSynced}
	return k
}

// Start runs the informers in the background; Stop ends them. Lookups
// answer from what has arrived so far.
func (k *Kube) Start() {
	k.node.Start(k.stop)
	k.cluster.Start(k.stop)
}

// WaitForSync waits until every informer has its first list, or ctx ends;
// it reports whether they all did.
func (k *Kube) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), k.synced...)
}

// Stop ends the informers and waits for their goroutines.
func (k *Kube) Stop() {
	k.once.Do(func() { close(k.stop) })
	k.node.Shutdown()
	k.cluster.Shutdown()
}

// NodeName is the node the pods are scoped to.
func (k *Kube) NodeName() string { return k.cfg.NodeName }

// PodByContainer returns the pod that runs the container with this
// runtime id.
func (k *Kube) PodByContainer(id string) (*Pod, bool) {
	k.mu.RLock()
	p := k.byContainer[id]
	k.mu.RUnlock()
	return p, p != nil
}

// PodByUID returns the pod with this UID (from a cgroup path, before the
// kubelet has reported the container's id).
func (k *Kube) PodByUID(uid string) (*Pod, bool) {
	k.mu.RLock()
	p := k.byUID[uid]
	k.mu.RUnlock()
	return p, p != nil
}

// PodByIP returns the running pod of this node with this IP. Host-network
// pods have no IP of their own and are not found by it.
func (k *Kube) PodByIP(ip netip.Addr) (*Pod, bool) {
	k.mu.RLock()
	p := k.byIP[ip.Unmap()]
	k.mu.RUnlock()
	return p, p != nil
}

// ServiceByIP returns the Service with this cluster IP, or whose
// endpoints include it. When several Services claim an endpoint, the
// first by namespace and name wins.
func (k *Kube) ServiceByIP(ip netip.Addr) (Service, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	claims := k.svcIPs[ip.Unmap()]
	if len(claims) == 0 {
		return Service{}, false
	}
	best := claims[0].svc
	for _, c := range claims[1:] {
		if c.svc.Namespace < best.Namespace || c.svc.Namespace == best.Namespace && c.svc.Name < best.Name {
			best = c.svc
		}
	}
	return best, true
}

// Workload resolves p's owner chain: a ReplicaSet's Deployment and a
// Job's CronJob come from the ReplicaSet and Job informers; until the
// ReplicaSet is known, its Deployment is its name less the pod's
// pod-template-hash.
func (k *Kube) Workload(p *Pod) Workload {
	var w Workload
	switch o := p.Owner; o.Kind {
	case "":
	case "ReplicaSet":
		w.ReplicaSet = o.Name
		if rs, err := k.rs.ReplicaSets(p.Namespace).Get(o.Name); err == nil {
			if owner := controllerOf(rs.OwnerReferences); owner.Kind == "Deployment" {
				w.Deployment = owner.Name
			}
		} else if p.templateHash != "" {
			if d, ok := strings.CutSuffix(o.Name, "-"+p.templateHash); ok && d != "" {
				w.Deployment = d
			}
		}
	case "StatefulSet":
		w.StatefulSet = o.Name
	case "DaemonSet":
		w.DaemonSet = o.Name
	case "Job":
		w.Job = o.Name
		if job, err := k.jobs.Jobs(p.Namespace).Get(o.Name); err == nil {
			if owner := controllerOf(job.OwnerReferences); owner.Kind == "CronJob" {
				w.CronJob = owner.Name
			}
		}
	default:
		w.Other = o
	}
	return w
}

// controllerOf returns the controller among refs, else the first.
func controllerOf(refs []metav1.OwnerReference) OwnerRef {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return OwnerRef{Kind: r.Kind, Name: r.Name}
		}
	}
	if len(refs) > 0 {
		return OwnerRef{Kind: refs[0].Kind, Name: refs[0].Name}
	}
	return OwnerRef{}
}

// strip is the informers' transform: it keeps of each object only what
// weft reads, so the caches of a busy node stay small.
func strip(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return stripPod(o), nil
	case *corev1.Service:
		out := &corev1.Service{ObjectMeta: stripMeta(o.ObjectMeta, false)}
		out.Spec.ClusterIP, out.Spec.ClusterIPs = o.Spec.ClusterIP, o.Spec.ClusterIPs
		return out, nil
	case *discoveryv1.EndpointSlice:
		out := &discoveryv1.EndpointSlice{ObjectMeta: stripMeta(o.ObjectMeta, false), AddressType: o.AddressType}
		if name := o.Labels[discoveryv1.LabelServiceName]; name != "" {
			out.Labels = map[string]string{discoveryv1.LabelServiceName: name}
		}
		for _, e := range o.Endpoints {
			out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{Addresses: e.Addresses})
		}
		return out, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: stripMeta(o.ObjectMeta, true)}, nil
	case *batchv1.Job:
		return &batchv1.Job{ObjectMeta: stripMeta(o.ObjectMeta, true)}, nil
	}
	return obj, nil // cache.DeletedFinalStateUnknown and the like
}

// stripMeta keeps name, namespace, UID and resource version, and the
// owner references (kind, name, controller) when owners is set.
func stripMeta(m metav1.ObjectMeta, owners bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	if owners {
		for _, r := range m.OwnerReferences {
			out.OwnerReferences = append(out.OwnerReferences, metav1.OwnerReference{Kind: r.Kind, Name: r.Name, Controller: r.Controller})
		}
	}
	return out
}

// stripPod keeps a pod's identity, the two labels, owners, node, host
// network, IPs, phase, each container's name, image and literal
// OTEL_SERVICE_NAME, and each container status's name, id and image.
func stripPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{ObjectMeta: stripMeta(p.ObjectMeta, true)}
	for _, l := range []string{labelAppName, labelPodTemplateHash} {
		if v, ok := p.Labels[l]; ok {
			if out.Labels == nil {
				out.Labels = make(map[string]string, 2)
			}
			out.Labels[l] = v
		}
	}
	out.Spec.NodeName, out.Spec.HostNetwork = p.Spec.NodeName, p.Spec.HostNetwork
	keep := func(cs []corev1.Container) []corev1.Container {
		var kept []corev1.Container
		for _, c := range cs {
			k := corev1.Container{Name: c.Name, Image: c.Image}
			for _, e := range c.Env {
				if e.Name == envServiceName && e.ValueFrom == nil && e.Value != "" {
					k.Env = []corev1.EnvVar{{Name: e.Name, Value: e.Value}}
				}
			}
			kept = append(kept, k)
		}
		return kept
	}
	out.Spec.Containers, out.Spec.InitContainers = keep(p.Spec.Containers), keep(p.Spec.InitContainers)
	for _, c := range p.Spec.EphemeralContainers {
		out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Image: c.Image}})
	}
	out.Status.Phase, out.Status.PodIP, out.Status.PodIPs = p.Status.Phase, p.Status.PodIP, p.Status.PodIPs
	keepStatus := func(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
		var kept []corev1.ContainerStatus
		for _, s := range ss {
			kept = append(kept, corev1.ContainerStatus{Name: s.Name, ContainerID: s.ContainerID, Image: s.Image})
		}
		return kept
	}
	out.Status.ContainerStatuses = keepStatus(p.Status.ContainerStatuses)
	out.Status.InitContainerStatuses = keepStatus(p.Status.InitContainerStatuses)
	out.Status.EphemeralContainerStatuses = keepStatus(p.Status.EphemeralContainerStatuses)
	return out
}

// TrimContainerID removes the runtime prefix of a container status's id:
// "containerd://<id>", "docker://<id>", "cri-o://<id>" are all "<id>".
func TrimContainerID(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		return id[i+len("://"):]
	}
	return id
}

// newPod builds the published Pod from a stripped pod.
func newPod(p *corev1.Pod) *Pod {
	out := &Pod{
		Name: p.Name, Namespace: p.Namespace, UID: string(p.UID), NodeName: p.Spec.NodeName,
		AppName:      p.Labels[labelAppName],
		templateHash: p.Labels[labelPodTemplateHash],
		Owner:        controllerOf(p.OwnerReferences),
	}
	if !p.Spec.HostNetwork {
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				out.IPs = append(out.IPs, a.Unmap())
			}
		}
		if len(out.IPs) == 0 && p.Status.PodIP != "" {
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				out.IPs = append(out.IPs, a.Unmap())
			}
		}
	}
	spec := map[string]corev1.Container{}
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			spec[c.Name] = c
		}
	}
	for _, c := range p.Spec.EphemeralContainers {
		spec[c.Name] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	seen := map[string]bool{}
	add := func(name, id, image string) {
		if seen[name] {
			return
		}
		seen[name] = true
		c := PodContainer{Name: name, ID: TrimContainerID(id), Image: image}
		if s, ok := spec[name]; ok {
			if c.Image == "" {
				c.Image = s.Image
			}
			for _, e := range s.Env {
				if e.Name == envServiceName {
					c.ServiceName = e.Value
				}
			}
		}
		out.Containers = append(out.Containers, c)
	}
	for _, ss := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, s := range ss {
			add(s.Name, s.ContainerID, s.Image)
		}
	}
	// Containers the kubelet has not reported yet: known by name only.
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			add(c.Name, "", "")
		}
	}
	return out
}

func podKey(namespace, name string) string { return namespace + "/" + name }

func (k *Kube) setPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	pod := newPod(p)
	finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	k.mu.Lock()
	defer k.mu.Unlock()
	key := podKey(pod.Namespace, pod.Name)
	k.unindexLocked(k.pods[key])
	k.pods[key] = pod
	k.byUID[pod.UID] = pod
	for _, c := range pod.Containers {
		if c.ID != "" {
			k.byContainer[c.ID] = pod
		}
	}
	if !finished {
		// A finished pod's IP is free for the next pod.
		for _, ip := range pod.IPs {
			k.byIP[ip] = pod
		}
	}
}

func (k *Kube) deletePod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key := podKey(p.Namespace, p.Name)
	k.unindexLocked(k.pods[key])
	delete(k.pods, key)
}

// unindexLocked removes old's index entries that still point at it.
func (k *Kube) unindexLocked(old *Pod) {
	if old == nil {
		return
	}
	if k.byUID[old.UID] == old {
		delete(k.byUID, old.UID)
	}
	for _, c := range old.Containers {
		if c.ID != "" && k.byContainer[c.ID] == old {
			delete(k.byContainer, c.ID)
		}
	}
	for _, ip := range old.IPs {
		if k.byIP[ip] == old {
			delete(k.byIP, ip)
		}
	}
}

func (k *Kube) setService(obj any) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	k.setSource("svc/"+podKey(s.Namespace, s.Name), Service{Namespace: s.Namespace, Name: s.Name}, ips)
}

func (k *Kube) setSlice(obj any) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	var ips []string
	if name != "" {
		for _, e := range s.Endpoints {
			ips = append(ips, e.Addresses...)
		}
	}
	k.setSource("eps/"+podKey(s.Namespace, s.Name), Service{Namespace: s.Namespace, Name: name}, ips)
}

func (k *Kube) deleteSource(obj any, prefix string) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	k.setSource(prefix+podKey(m.GetNamespace(), m.GetName()), Service{}, nil)
}

// setSource replaces what one Service or EndpointSlice says about IPs.
func (k *Kube) setSource(source string, svc Service, ips []string) {
	var addrs []netip.Addr
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil { // "None" is not an address
			addrs = append(addrs, a.Unmap())
		}
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, a := range k.svcKeys[source] {
		claims := k.svcIPs[a]
		for i, c := range claims {
			if c.source == source {
				claims = append(claims[:i:i], claims[i+1:]...)
				break
			}
		}
		if len(claims) == 0 {
			delete(k.svcIPs, a)
		} else {
			k.svcIPs[a] = claims
		}
	}
	if len(addrs) == 0 {
		delete(k.svcKeys, source)
		return
	}
	k.svcKeys[source] = addrs
	for i, a := range addrs {
		if i > 0 && addrs[i-1] == a {
			continue
		}
		k.svcIPs[a] = append(k.svcIPs[a], ipService{source: source, svc: svc})
	}
}
