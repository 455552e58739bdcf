package inference

import (
	"net/http"
	"strings"
)

// DataPlane says whether a request with this method and escaped path is
// an inference request (OIP infer or MLflow invocations), the requests a
// server answers at volume and serves on its fast HTTP/1.1 path.
func DataPlane(method, path string) bool {
	if method != http.MethodPost {
		return false
	}
	switch {
	case strings.HasPrefix(path, "/v2/models/"):
		return strings.HasSuffix(path, "/infer")
	case strings.HasPrefix(path, "/deployments/"):
		return strings.HasSuffix(path, "/invocations")
	}
	return path == "/invocations"
}
