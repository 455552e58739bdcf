package search

import (
	"encoding/base64"
	"encoding/json"

	"github.com/slipwayml/slipway/internal/errs"
)

// EncodePageToken makes the opaque token MLflow clients hand back for the
// next page of a search: base64 of {"offset": N}, as MLflow's SQL store
// writes it.
func EncodePageToken(offset int) string {
	b, _ := json.Marshal(map[string]int{"offset": offset})
	return base64.StdEncoding.EncodeToString(b)
}

// DecodePageToken reads a token from EncodePageToken; "" is the first page.
func DecodePageToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return 0, errs.Invalid("Invalid page token, could not base64-decode")
	}
	var p struct {
		Offset *int `json:"offset"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Offset == nil || *p.Offset < 0 {
		return 0, errs.Invalid("Invalid page token, decoded value=%s", raw)
	}
	return *p.Offset, nil
}
