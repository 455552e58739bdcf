package inference

import "testing"

func TestDataPlane(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/v2/models/credit/infer", true},
		{"POST", "/v2/models/credit/versions/3/infer", true},
		{"POST", "/deployments/credit/invocations", true},
		{"POST", "/invocations", true},
		{"GET", "/v2/models/credit/infer", false},
		{"GET", "/v2/health/ready", false},
		{"POST", "/v2/models/credit", false},
		{"POST", "/api/v1/deployments/credit/feedback", false},
		{"POST", "/api/2.0/mlflow/runs/log-batch", false},
		{"POST", "/invocations/x", false},
	} {
		if got := DataPlane(tc.method, tc.path); got != tc.want {
			t.Errorf("DataPlane(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}
