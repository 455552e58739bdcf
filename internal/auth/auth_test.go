package auth_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/auth"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := auth.New(db)
		tok, secret, err := s.Create(ctx, "ci-bot", "", auth.RoleEditor)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Username != "ci-bot" || !strings.HasPrefix(secret, "slw_") {
			t.Fatalf("token = %+v, secret %q", tok, secret)
		}
		// Only a digest is stored: the secret appears nowhere in the table.
		var n int
		if err := db.Read.QueryRow(db.Q(`SELECT COUNT(*) FROM api_tokens WHERE secret_hash = ? OR token_id = ? OR name = ?`), secret, secret, secret).Scan(&n); err != nil || n != 0 {
			t.Fatalf("secret stored in clear: %d rows, %v", n, err)
		}
		if _, _, err := s.Create(ctx, "ci-bot", "", auth.RoleEditor); !errs.Is(err, errs.AlreadyExists) {
			t.Fatalf("duplicate name: %v", err)
		}
		for _, bad := range []struct{ name, role string }{{"", "editor"}, {"a b", "editor"}, {"ok", "root"}} {
			if _, _, err := s.Create(ctx, bad.name, "", bad.role); !errs.Is(err, errs.InvalidArgument) {
				t.Errorf("Create(%q, %q) = %v, want InvalidArgument", bad.name, bad.role, err)
			}
		}

		p, err := s.Authenticate(ctx, "", secret)
		if err != nil || p.Username != "ci-bot" || !p.Can(auth.RoleViewer) || p.Can(auth.RoleApprover) {
			t.Fatalf("Authenticate = %+v, %v", p, err)
		}
		if _, err := s.Authenticate(ctx, "someone-else", secret); !errs.Is(err, errs.Unauthenticated) {
			t.Fatalf("basic auth with the wrong user: %v", err)
		}
		for _, h := range []string{"", "Bearer slw_nope", "Token " + secret} {
			r := httptest.NewRequest("GET", "/", nil)
			if h != "" {
				r.Header.Set("Authorization", h)
			}
			if _, err := s.FromRequest(r); !errs.Is(err, errs.Unauthenticated) {
				t.Errorf("Authorization %q: %v, want Unauthenticated", h, err)
			}
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth("ci-bot", secret)
		if _, err := s.FromRequest(r); err != nil {
			t.Fatalf("basic auth: %v", err)
		}

		if err := s.Revoke(ctx, "ci-bot"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "", secret); !errs.Is(err, errs.Unauthenticated) {
			t.Fatalf("revoked token still works: %v", err)
		}
		if err := s.Revoke(ctx, "ci-bot"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("second revoke: %v", err)
		}
		// A revoked name can be issued again.
		if _, _, err := s.Create(ctx, "ci-bot", "", auth.RoleViewer); err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %d tokens, %v", len(list), err)
		}
	})
}
