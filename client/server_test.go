package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/api"
	"github.com/slipwayml/slipway/internal/server"
)

// testServer is the real Slipway server, in process, on SQLite and a local
// artifact folder in a temp dir.
type testServer struct {
	URL string
	App *server.App
}

func startServer(t *testing.T, requireAuth bool) *testServer {
	t.Helper()
	ctx := context.Background()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	app, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Config{
		Tracking:     app.Tracking,
		Artifacts:    app.Artifacts,
		Auth:         app.Auth,
		RequireAuth:  requireAuth,
		MaxBodyBytes: 16 << 20,
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	return &testServer{URL: srv.URL, App: app}
}

func newClient(t *testing.T, opts ...client.Option) (*client.Client, *testServer) {
	t.Helper()
	s := startServer(t, false)
	c, err := client.New(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}
