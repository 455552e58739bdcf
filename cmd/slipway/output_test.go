package main

import (
	"math"
	"testing"
	"time"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
)

func TestAPICodes(t *testing.T) {
	for _, tc := range []struct {
		e    client.APIError
		want errs.Code
	}{
		{client.APIError{StatusCode: 400, Code: "INVALID_PARAMETER_VALUE"}, errs.InvalidArgument},
		{client.APIError{StatusCode: 404, Code: "RESOURCE_DOES_NOT_EXIST"}, errs.NotFound},
		{client.APIError{StatusCode: 400, Code: "RESOURCE_ALREADY_EXISTS"}, errs.AlreadyExists},
		{client.APIError{StatusCode: 401, Code: "UNAUTHENTICATED"}, errs.Unauthenticated},
		{client.APIError{StatusCode: 403, Code: "PERMISSION_DENIED"}, errs.PermissionDenied},
		{client.APIError{StatusCode: 400, Code: "INVALID_STATE"}, errs.FailedPrecondition},
		{client.APIError{StatusCode: 404, Code: "ENDPOINT_NOT_FOUND"}, errs.Internal},
		{client.APIError{StatusCode: 401}, errs.Unauthenticated},
		{client.APIError{StatusCode: 502}, errs.Internal},
		{client.APIError{StatusCode: 500, Code: "INTERNAL_ERROR"}, errs.Internal},
	} {
		e := tc.e
		e.Message = "m"
		err := explain(&e, "http://x", "--url")
		want := "m"
		if tc.want == errs.Internal {
			want = "server error: " + e.Error()
		}
		if errs.CodeOf(err) != tc.want || errs.Message(err) != want {
			t.Errorf("%+v: code %v message %q, want %v", tc.e, errs.CodeOf(err), errs.Message(err), tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		350 * time.Millisecond:                      "350ms",
		12340 * time.Millisecond:                    "12.3s",
		80 * time.Second:                            "1m20s",
		2*time.Hour + 5*time.Minute + 9*time.Second: "2h5m",
		26 * time.Hour:                              "26h",
		3 * time.Hour:                               "3h",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for v, want := range map[float64]string{0.8123456: "0.812346", 1e7: "1e+07", 42: "42", math.Inf(1): "+Inf", math.Inf(-1): "-Inf"} {
		if got := fmtMetric(v); got != want {
			t.Errorf("fmtMetric(%v) = %q, want %q", v, got, want)
		}
	}
	if fmtMetric(math.NaN()) != "NaN" || runDuration(5, 0) != "-" || fmtBytes(3000) != "2.9 KiB" || fmtBytes(5<<20) != "5.0 MiB" {
		t.Error("formatting of NaN, open runs or sizes changed")
	}
}
