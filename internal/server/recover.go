package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/slipwayml/slipway/internal/registry"
)

// recoverEvery is how often abandoned registrations are looked for. The
// first look is at start-up, where a crash left them; later ones find those
// of another server sharing the database, and those too young at start-up
// to be told from a registration still copying (registry.PendingStaleAfter).
var recoverEvery = time.Minute

func recoverPending(ctx context.Context, reg *registry.Service, log *slog.Logger) {
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		failed, err := reg.RecoverPending(ctx, reg.Now().Add(-registry.PendingStaleAfter))
		if err != nil && ctx.Err() == nil {
			log.Warn("looking for abandoned model version registrations", "err", err)
		}
		for _, v := range failed {
			log.Warn("marked an abandoned model version registration FAILED_REGISTRATION and removed its partial files",
				"name", v.Name, "version", v.Version)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
