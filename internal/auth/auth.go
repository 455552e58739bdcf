// Package auth holds API tokens: who may call Slipway, and in which role.
// Only a SHA-256 digest of each secret is stored; the secret itself is shown
// once, when the token is created.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
)

// Roles, from least to most privileged.
const (
	RoleViewer   = "viewer"
	RoleEditor   = "editor"
	RoleApprover = "approver"
	RoleAdmin    = "admin"
)

var roleRank = map[string]int{RoleViewer: 1, RoleEditor: 2, RoleApprover: 3, RoleAdmin: 4}

// ValidRole reports whether role is one Slipway knows.
func ValidRole(role string) bool { return roleRank[role] > 0 }

// secretPrefix makes Slipway tokens recognisable to secret scanners.
const secretPrefix = "slw_"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// Token describes an API token; it never holds the secret.
type Token struct {
	ID          string
	Name        string
	Username    string
	Role        string
	CreatedTime int64
	RevokedTime *int64
}

// Principal is the authenticated caller of a request.
type Principal struct {
	Username string
	Role     string
	TokenID  string
}

// Can reports whether p's role is at least role.
func (p Principal) Can(role string) bool { return roleRank[p.Role] >= roleRank[role] }

type Service struct {
	db  *store.DB
	Now func() time.Time
}

func New(db *store.DB) *Service { return &Service{db: db, Now: time.Now} }

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create issues a token and returns it with its secret.
func (s *Service) Create(ctx context.Context, name, username, role string) (Token, string, error) {
	if !validName.MatchString(name) {
		return Token{}, "", errs.Invalid("token name %q: must be 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit", name)
	}
	if username == "" {
		username = name
	}
	if !validName.MatchString(username) {
		return Token{}, "", errs.Invalid("username %q: must be 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit", username)
	}
	if !ValidRole(role) {
		return Token{}, "", errs.Invalid("role %q: must be one of viewer, editor, approver, admin", role)
	}
	var raw [32]byte
	rand.Read(raw[:])
	secret := secretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	var id [8]byte
	rand.Read(id[:])
	t := Token{ID: hex.EncodeToString(id[:]), Name: name, Username: username, Role: role, CreatedTime: s.Now().UnixMilli()}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*) FROM api_tokens WHERE name = ? AND revoked_time IS NULL`), name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errs.New(errs.AlreadyExists, "an active token named %q already exists", name)
		}
		_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO api_tokens (token_id, name, username, role, secret_hash, created_time)
			VALUES (?, ?, ?, ?, ?, ?)`), t.ID, t.Name, t.Username, t.Role, hashSecret(secret), t.CreatedTime)
		return err
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// List returns every token, newest first, revoked ones included.
func (s *Service) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT token_id, name, username, role, created_time, revoked_time
		FROM api_tokens ORDER BY created_time DESC, token_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Username, &t.Role, &t.CreatedTime, &revoked); err != nil {
			return nil, err
		}
		if revoked.Valid {
			t.RevokedTime = &revoked.Int64
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Revoke disables the active token with the given id or name.
func (s *Service) Revoke(ctx context.Context, idOrName string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE api_tokens SET revoked_time = ?
			WHERE (token_id = ? OR name = ?) AND revoked_time IS NULL`), s.Now().UnixMilli(), idOrName, idOrName)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf("no active token with id or name %q", idOrName)
		}
		return nil
	})
}

// Authenticate resolves a secret to its principal. username, when not
// empty (basic auth), must match the token's user.
func (s *Service) Authenticate(ctx context.Context, username, secret string) (Principal, error) {
	denied := errs.New(errs.Unauthenticated, "invalid or revoked API token")
	if !strings.HasPrefix(secret, secretPrefix) {
		return Principal{}, denied
	}
	var p Principal
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT token_id, username, role FROM api_tokens
		WHERE secret_hash = ? AND revoked_time IS NULL`), hashSecret(secret)).Scan(&p.TokenID, &p.Username, &p.Role)
	if err == sql.ErrNoRows {
		return Principal{}, denied
	}
	if err != nil {
		return Principal{}, err
	}
	if username != "" && subtle.ConstantTimeCompare([]byte(username), []byte(p.Username)) != 1 {
		return Principal{}, denied
	}
	return p, nil
}

// FromRequest authenticates a request's Authorization header: a Bearer
// token (MLFLOW_TRACKING_TOKEN) or basic auth with the token as password
// (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).
func (s *Service) FromRequest(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, errs.New(errs.Unauthenticated, "authentication required: send an API token as 'Authorization: Bearer <token>' (MLFLOW_TRACKING_TOKEN) or as the basic-auth password")
	}
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return s.Authenticate(r.Context(), "", strings.TrimSpace(tok))
	}
	if user, pass, ok := r.BasicAuth(); ok {
		return s.Authenticate(r.Context(), user, pass)
	}
	return Principal{}, errs.New(errs.Unauthenticated, "unsupported Authorization scheme: use Bearer or Basic")
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal a request was authenticated as.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
