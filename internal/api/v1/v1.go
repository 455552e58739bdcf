// Package v1 serves Slipway's native API under /api/v1: what MLflow's API
// has no words for (data versions, lineage, governance, pipelines). Errors
// are one envelope for the whole API,
// {"error":{"code":"invalid_argument","message":"..."}}, with the code from
// internal/errs and a message that names the field and the rule.
package v1

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/lineage"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/pipelines/triggers"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/serving"
)

// Prefix is where the native API lives.
const Prefix = "/api/v1/"

// MaxManifestBytes bounds the JSON body of a version commit or a
// missing-objects query: a 1,000,000-file manifest with profiles fits.
const MaxManifestBytes = 256 << 20

// Handler serves the native API.
type Handler struct {
	Datasets *datasets.Service
	// Models and Audit serve governance (policies, approvals, gates) and
	// the audit log; nil leaves those routes out.
	Models *registry.Service
	Audit  *audit.Log
	// Lineage serves the provenance graph; nil leaves it out.
	Lineage *lineage.Service
	// Pipelines serves registered pipelines and their runs, Triggers their
	// schedules and webhooks; nil leaves them out.
	Pipelines *runs.Service
	Triggers  *triggers.Service
	// Deployments serves deployments; nil leaves them out.
	Deployments *serving.Service
	Log         *slog.Logger
}

// Register adds the native API's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	if h.Log == nil {
		h.Log = slog.Default()
	}
	if h.Datasets != nil {
		h.registerDatasets(mux)
	}
	h.registerGovernance(mux)
	if h.Lineage != nil {
		mux.HandleFunc("GET /api/v1/lineage/{kind}/{id...}", h.lineage)
	}
	if h.Pipelines != nil {
		h.registerPipelines(mux)
	}
	if h.Triggers != nil {
		h.registerTriggers(mux)
	}
	if h.Deployments != nil {
		h.registerDeployments(mux)
	}
	// Anything else under the prefix gets the native envelope, not the
	// MLflow one or a plain-text 404.
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, errs.NotFoundf("no endpoint %s %s (or the method is not allowed there)", r.Method, r.URL.Path))
	})
}

// status maps a code to its HTTP status, once for the whole API.
func status(c errs.Code) int {
	switch c {
	case errs.InvalidArgument:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.AlreadyExists, errs.FailedPrecondition:
		return http.StatusConflict
	case errs.PermissionDenied:
		return http.StatusForbidden
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.ResourceExhausted:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes err in the native envelope. Internal details stay out
// of the response.
// StatusOf is the HTTP status the native API answers err with.
func StatusOf(err error) int { return status(errs.CodeOf(err)) }

func WriteError(w http.ResponseWriter, err error) {
	c := errs.CodeOf(err)
	writeJSON(w, status(c), errorBody{errorDetail{Code: c.String(), Message: errs.Message(err)}})
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errs.CodeOf(err) == errs.Internal {
		h.Log.Error("native API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteError(w, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads a JSON body strictly: unknown fields, trailing data and
// wrong types are errors naming the field.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, limit)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.Invalid("request body: must hold one JSON object and nothing after it")
	}
	return nil
}

func bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		return errs.New(errs.ResourceExhausted, "request body: larger than %d bytes", limit)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return errs.Invalid("request body: must be a JSON object")
		}
		return errs.Invalid("request body: field %s: must be %s, not a JSON %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntax):
		return errs.Invalid("request body: invalid JSON at byte %d: %v", syntax.Offset, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errs.Invalid("request body: a JSON object is required")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return errs.Invalid("request body: %s", msg)
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "float64", "uint64":
		return "a number"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	}
	return fmt.Sprintf("a %s", k)
}

func username(r *http.Request) string {
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		return p.Username
	}
	return ""
}
