// Package client is the Go SDK for Slipway's HTTP API. Slipway speaks
// MLflow's REST API, so this client also works against an MLflow tracking
// server; it covers experiments, runs, metrics and artifacts (through the
// artifact proxy, so no storage credentials are needed).
//
// Times are milliseconds since the Unix epoch, as on the wire. Methods that
// return one page take a page token and return the next one; the Iter* and
// *All variants follow the tokens for you.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// DefaultURL is where a local `slipway server` listens.
const DefaultURL = "http://127.0.0.1:5000"

// Client calls one Slipway (or MLflow) server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], without a trailing slash
	http      *http.Client
	auth      string // the Authorization header value, if any
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer <token>".
func WithToken(token string) Option {
	return func(c *Client) {
		if token != "" {
			c.auth = "Bearer " + token
		}
	}
}

// WithBasicAuth sends HTTP basic credentials. Slipway accepts an API token
// as the password, which is how MLflow's MLFLOW_TRACKING_USERNAME/PASSWORD
// settings reach it.
func WithBasicAuth(username, password string) Option {
	return func(c *Client) {
		if username != "" || password != "" {
			c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
		}
	}
}

// WithHTTPClient replaces http.DefaultClient, for timeouts, proxies or TLS
// settings. Prefer contexts for per-call deadlines: a client-wide timeout
// also cuts off long artifact transfers.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithUserAgent sets the User-Agent header sent with every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithEnvCredentials reads credentials the way FromEnv does, for callers
// that take the server URL from elsewhere (a command-line flag, say). A
// token (SLIPWAY_TOKEN) wins; then, as in MLflow's clients,
// MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD win over
// MLFLOW_TRACKING_TOKEN.
func WithEnvCredentials() Option {
	return func(c *Client) {
		user, pass := os.Getenv("MLFLOW_TRACKING_USERNAME"), os.Getenv("MLFLOW_TRACKING_PASSWORD")
		switch {
		case os.Getenv("SLIPWAY_TOKEN") != "":
			WithToken(os.Getenv("SLIPWAY_TOKEN"))(c)
		case user != "" && pass != "":
			WithBasicAuth(user, pass)(c)
		default:
			WithToken(os.Getenv("MLFLOW_TRACKING_TOKEN"))(c)
		}
	}
}

// New returns a client for the server at baseURL, an http:// or https://
// URL that may carry a path prefix (for a server behind a reverse proxy).
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := checkURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("server URL %w", err)
	}
	c := &Client{base: base, http: http.DefaultClient, userAgent: "slipway-go-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// FromEnv returns a client configured the way MLflow's clients are, so one
// environment serves both: the server is SLIPWAY_URL, else
// MLFLOW_TRACKING_URI, else DefaultURL; credentials are read as
// WithEnvCredentials describes. opts apply after the environment and so
// override it.
func FromEnv(opts ...Option) (*Client, error) {
	u, name := DefaultURL, ""
	for _, v := range []string{"SLIPWAY_URL", "MLFLOW_TRACKING_URI"} {
		if s := os.Getenv(v); s != "" {
			u, name = s, v
			break
		}
	}
	base, err := checkURL(u)
	if err != nil {
		if name == "" {
			return nil, fmt.Errorf("server URL %w", err)
		}
		return nil, fmt.Errorf("%s %w", name, err)
	}
	return New(base, append([]Option{WithEnvCredentials()}, opts...)...)
}

// checkURL refuses what MLflow accepts as a tracking URI but a remote client
// cannot use: local paths, file: and database URIs, "databricks".
func checkURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return "", fmt.Errorf("%q must not carry credentials, a query or a fragment", s)
		}
		return strings.TrimSuffix(u.String(), "/"), nil
	}
	switch {
	case s == "databricks" || strings.HasPrefix(s, "databricks:") || strings.HasPrefix(s, "databricks-uc"):
		return "", fmt.Errorf("%q is a Databricks URI; Slipway needs an http:// or https:// server URL such as %s", s, DefaultURL)
	case err == nil && u.Scheme != "" && u.Scheme != "file" && len(u.Scheme) > 1:
		return "", fmt.Errorf("%q is not an http:// or https:// URL; set it to the Slipway server, such as %s", s, DefaultURL)
	}
	return "", fmt.Errorf("%q is a local path, not a server; set it to an http:// or https:// URL such as %s", s, DefaultURL)
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base }

// Error codes the server returns in APIError.Code (MLflow's
// databricks.proto names).
const (
	CodeInvalidParameterValue = "INVALID_PARAMETER_VALUE"
	CodeResourceDoesNotExist  = "RESOURCE_DOES_NOT_EXIST"
	CodeResourceAlreadyExists = "RESOURCE_ALREADY_EXISTS"
	CodeInvalidState          = "INVALID_STATE"
	CodePermissionDenied      = "PERMISSION_DENIED"
	CodeUnauthenticated       = "UNAUTHENTICATED"
	CodeResourceExhausted     = "RESOURCE_EXHAUSTED"
	CodeEndpointNotFound      = "ENDPOINT_NOT_FOUND"
	CodeInternalError         = "INTERNAL_ERROR"
)

// APIError is an error response from the server. Code is MLflow's
// error_code; it is empty when the response did not come from an MLflow API
// (a reverse proxy's error page, say), and Message then holds the start of
// the body.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, code, e.StatusCode)
}

// IsNotFound reports whether err says the experiment, run, metric or
// artifact asked for does not exist.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Code == CodeResourceDoesNotExist || e.Code == "" && e.StatusCode == http.StatusNotFound)
}

// IsAlreadyExists reports whether err says the name is taken.
func IsAlreadyExists(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == CodeResourceAlreadyExists
}

var errRepeatedToken = errors.New("the server returned the page token it was sent; stopping instead of looping")

const (
	trackingPrefix = "/api/2.0/mlflow/"
	artifactPrefix = "/api/2.0/mlflow-artifacts/artifacts"
)

// call sends in (as a JSON body, or as query with GET) to a tracking
// endpoint and decodes the response into out, which may be nil.
func (c *Client) call(ctx context.Context, method, endpoint string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding %s request: %w", endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, trackingPrefix+endpoint, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading %s response from %s: %w", endpoint, c.base, err)
	}
	return nil
}

// send performs a request to path (already escaped) and returns the
// response when its status is 2xx; otherwise it reads the body into an
// APIError. The caller closes the body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	return c.roundTrip(ctx, method, path, query, body, contentType, readError)
}

// roundTrip sends one request with the client's headers; a non-2xx answer
// becomes the error readErr makes of it, since the MLflow and native APIs
// shape errors differently.
func (c *Client) roundTrip(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, readErr func(*http.Response) error) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r, ok := body.(interface{ Len() int }); ok {
		req.ContentLength = int64(r.Len())
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readErr(resp)
}

func readError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{StatusCode: resp.StatusCode}
	var body struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && (body.Code != "" || body.Message != "") {
		e.Code, e.Message = body.Code, body.Message
		return e
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}
