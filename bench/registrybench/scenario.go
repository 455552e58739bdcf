package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// scenario is one search_registered_models request.
type scenario struct {
	Name       string `json:"name"`
	Tags       []kv   `json:"-"`
	Filter     string `json:"filter"`
	ByUpdated  bool   `json:"-"`
	OrderBy    string `json:"order_by,omitempty"`
	Offset     int    `json:"offset"`
	MaxResults int    `json:"max_results"`
}

// scenarios: two tag filters, one selective (about 1 model in 200) and one
// not (about 4 in 10), first and deep pages; no filter ordered by name and
// by update time. Pages hold 100 models, the MLflow client's default.
func scenarios() []scenario {
	both := func(name string, tags []kv, offset int) scenario {
		var parts []string
		for _, t := range tags {
			parts = append(parts, "tags."+t.k+" = '"+t.v+"'")
		}
		return scenario{Name: name, Tags: tags, Filter: strings.Join(parts, " AND "), Offset: offset, MaxResults: 100}
	}
	return []scenario{
		both("two tags, selective", []kv{{"team", "risk"}, {"tier", "gold"}}, 0),
		both("two tags, unselective", []kv{{"env", "prod"}, {"tier", "bronze"}}, 0),
		both("two tags, unselective, page 21", []kv{{"env", "prod"}, {"tier", "bronze"}}, 2000),
		{Name: "no filter, order_by name", OrderBy: "name", MaxResults: 100},
		{Name: "no filter, order_by name, page 51", OrderBy: "name", Offset: 5000, MaxResults: 100},
		{Name: "no filter, order_by last_updated_timestamp DESC", OrderBy: "last_updated_timestamp DESC", ByUpdated: true, MaxResults: 100},
	}
}

func (sc scenario) orderBy() []string {
	if sc.OrderBy == "" {
		return nil
	}
	return []string{sc.OrderBy}
}

func (sc scenario) pageToken() string {
	if sc.Offset == 0 {
		return ""
	}
	return search.EncodePageToken(sc.Offset)
}

// expect is the page the scenario must return, from the generated data.
func (sc scenario) expect(models []*model) (page []*model, matching int) {
	var all []*model
	for _, m := range models {
		ok := true
		for _, t := range sc.Tags {
			ok = ok && m.tag(t.k) == t.v
		}
		if ok {
			all = append(all, m)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if sc.ByUpdated && all[i].updated != all[j].updated {
			return all[i].updated > all[j].updated
		}
		return all[i].name < all[j].name
	})
	if sc.Offset < len(all) {
		page = all[sc.Offset:min(sc.Offset+sc.MaxResults, len(all))]
	}
	return page, len(all)
}

func (sc scenario) request() registry.SearchRegisteredModelsRequest {
	return registry.SearchRegisteredModelsRequest{Filter: sc.Filter, MaxResults: int64(sc.MaxResults), OrderBy: sc.orderBy(), PageToken: sc.pageToken()}
}

// url is the GET request an MLflow client sends for the scenario.
func (sc scenario) url(base string) string {
	q := url.Values{}
	if sc.Filter != "" {
		q.Set("filter", sc.Filter)
	}
	q.Set("max_results", strconv.Itoa(sc.MaxResults))
	for _, o := range sc.orderBy() {
		q.Add("order_by", o)
	}
	if tok := sc.pageToken(); tok != "" {
		q.Set("page_token", tok)
	}
	return base + "/api/2.0/mlflow/registered-models/search?" + q.Encode()
}

// httpGet sends one request and reads the whole answer; the time covers
// every byte of it, not decoding it.
func httpGet(ctx context.Context, hc *http.Client, u string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return body, d, err
}

// answer is a page reduced to what verification compares.
type answer struct {
	names   []string
	tags    map[string]int    // model -> number of tags
	aliases map[string]int    // model -> number of aliases
	latest  map[string]string // model -> sorted "stage:version,..." list
	order   map[string]string // model -> stages of latest_versions in order
	vtags   map[string]int    // model -> tags over its latest versions
}

func newAnswer() answer {
	return answer{tags: map[string]int{}, aliases: map[string]int{}, latest: map[string]string{}, order: map[string]string{}, vtags: map[string]int{}}
}

func (a *answer) add(name string, tags, aliases int, latest []version) {
	a.names = append(a.names, name)
	a.tags[name], a.aliases[name] = tags, aliases
	var set, order []string
	n := 0
	for _, v := range latest {
		set = append(set, v.stage+":"+strconv.FormatInt(v.n, 10))
		order = append(order, v.stage)
		n += len(v.tags)
	}
	sort.Strings(set)
	a.latest[name], a.order[name], a.vtags[name] = strings.Join(set, ","), strings.Join(order, ","), n
}

func expectedAnswer(page []*model) answer {
	a := newAnswer()
	for _, m := range page {
		a.add(m.name, len(m.tags), len(m.aliases), m.latest())
	}
	return a
}

func serviceAnswer(ms []registry.RegisteredModel) answer {
	a := newAnswer()
	for _, m := range ms {
		var vs []version
		for _, v := range m.LatestVersions {
			vv := version{n: v.Version, stage: v.CurrentStage}
			for _, t := range v.Tags {
				vv.tags = append(vv.tags, kv{t.Key, t.Value})
			}
			vs = append(vs, vv)
		}
		a.add(m.Name, len(m.Tags), len(m.Aliases), vs)
	}
	return a
}

func standinAnswer(ms []standinModel) answer {
	a := newAnswer()
	for _, m := range ms {
		a.add(m.name, len(m.tags), len(m.aliases), m.latest)
	}
	// MLflow's lazy load has no ORDER BY, so its stage order is the
	// database's row order; only the set is compared.
	a.order = nil
	return a
}

func httpAnswer(body []byte) (answer, error) {
	var res struct {
		RegisteredModels []struct {
			Name           string            `json:"name"`
			Tags           []json.RawMessage `json:"tags"`
			Aliases        []json.RawMessage `json:"aliases"`
			LatestVersions []struct {
				Version      string            `json:"version"`
				CurrentStage string            `json:"current_stage"`
				Status       string            `json:"status"`
				Tags         []json.RawMessage `json:"tags"`
			} `json:"latest_versions"`
		} `json:"registered_models"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return answer{}, err
	}
	a := newAnswer()
	for _, m := range res.RegisteredModels {
		var vs []version
		for _, v := range m.LatestVersions {
			n, err := strconv.ParseInt(v.Version, 10, 64)
			if err != nil || v.Status != registry.StatusReady {
				return answer{}, fmt.Errorf("model %s: latest version %q status %q", m.Name, v.Version, v.Status)
			}
			vs = append(vs, version{n: n, stage: v.CurrentStage, tags: make([]kv, len(v.Tags))})
		}
		a.add(m.Name, len(m.Tags), len(m.Aliases), vs)
	}
	return a, nil
}

// diff describes the first difference between got and want, or "".
func diff(got, want answer) string {
	if len(got.names) != len(want.names) {
		return fmt.Sprintf("%d models, want %d", len(got.names), len(want.names))
	}
	for i, n := range want.names {
		switch {
		case got.names[i] != n:
			return fmt.Sprintf("model %d is %s, want %s", i, got.names[i], n)
		case got.tags[n] != want.tags[n]:
			return fmt.Sprintf("%s: %d tags, want %d", n, got.tags[n], want.tags[n])
		case got.aliases[n] != want.aliases[n]:
			return fmt.Sprintf("%s: %d aliases, want %d", n, got.aliases[n], want.aliases[n])
		case got.latest[n] != want.latest[n]:
			return fmt.Sprintf("%s: latest_versions %s, want %s", n, got.latest[n], want.latest[n])
		case got.order != nil && got.order[n] != want.order[n]:
			return fmt.Sprintf("%s: latest_versions stage order %s, want %s", n, got.order[n], want.order[n])
		case got.vtags[n] != want.vtags[n]:
			return fmt.Sprintf("%s: %d tags on latest versions, want %d", n, got.vtags[n], want.vtags[n])
		}
	}
	return ""
}
