package http2

// gRPC status codes (google.golang.org/grpc/codes) that the mappings below
// produce.
const (
	grpcCancelled         = 1
	grpcUnknown           = 2
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// grpcStatus is the status a gRPC call ended with: grpc-status from the
// trailers or a Trailers-Only response, else what gRPC's HTTP/2 mapping
// (PROTOCOL-HTTP2.md, http-grpc-status-mapping.md) makes a client report:
// from a non-200 :status, a RST_STREAM's error code, or a response that
// ended without trailers. -1 when nothing is known: no response, an
// unknown error code, or trailers weft could not decode.
func grpcStatus(st *stream, partial bool) int {
	switch {
	case !st.grpc:
		return -1
	case st.grpcStatus >= 0:
		return st.grpcStatus
	case partial:
		return -1
	case st.resp && st.status != 200 && st.status != 0:
		return grpcFromHTTP(st.status)
	case st.reset:
		return grpcFromRST(st.rstCode)
	case st.respEnd:
		return grpcInternal // "server closed the stream without sending trailers"
	}
	return -1
}

// grpcFromHTTP maps a :status other than 200 (http-grpc-status-mapping.md).
func grpcFromHTTP(status int) int {
	switch status {
	case 400:
		return grpcInternal
	case 401:
		return grpcUnauthenticated
	case 403:
		return grpcPermissionDenied
	case 404:
		return grpcUnimplemented
	case 429, 502, 503, 504:
		return grpcUnavailable
	}
	return grpcUnknown
}

// grpcFromRST maps RST_STREAM error codes (PROTOCOL-HTTP2.md, "Errors").
func grpcFromRST(code int64) int {
	switch code {
	case 0x7: // REFUSED_STREAM
		return grpcUnavailable
	case 0x8: // CANCEL
		return grpcCancelled
	case 0xb: // ENHANCE_YOUR_CALM
		return grpcResourceExhausted
	case 0xc: // INADEQUATE_SECURITY
		return grpcPermissionDenied
	}
	return grpcInternal
}
