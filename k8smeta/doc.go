// Package k8smeta resolves a pid to the container, pod and owner it runs
// in, for the resource of the spans it takes part in.
package k8smeta
