package v1

import (
	"net/http"

	"github.com/slipwayml/slipway/internal/lineage"
)

// lineage answers GET /api/v1/lineage/{kind}/{id...}?direction=&depth=
// with the graph around one node; the id takes the rest of the path, so a
// model version reads /api/v1/lineage/model/credit/3.
func (h *Handler) lineage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query, err := lineage.ParseQuery(r.PathValue("kind"), r.PathValue("id"), q.Get("direction"), q.Get("depth"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := h.Lineage.Graph(r.Context(), query)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}
