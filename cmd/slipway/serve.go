package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/api/inference"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/http1"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/server"
)

func newServeCmd() *cobra.Command {
	var host, name string
	var port int
	cmd := &cobra.Command{
		Use:   "serve MODEL",
		Short: "Serve one model on its own, without the rest of the server",
		Long: `Serve one model over the Open Inference Protocol (/v2/models/NAME/infer)
and MLflow's scoring format (/invocations, /ping), for a container or an edge
box. MODEL is a registered version (models:/NAME/VERSION or
models:/NAME@ALIAS), whose files are fetched from the Slipway server
(SLIPWAY_URL or --url) and checked against the version's manifest there, or
a local model directory or file (an export, or what slipway train -o
writes). The model is loaded before the port opens, and a model no native
runtime can serve is refused. Requests are validated against the model's
signature; see docs/serving.md.`,
		Example: `  slipway serve models:/credit@production --port 8080
  slipway serve ./model --name credit --port 8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ref := args[0]
			dir, err := os.MkdirTemp("", "slipway-serve-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			version := "1"
			path := ref
			if strings.HasPrefix(ref, "models:/") {
				c, source, err := connect(cmd)
				if err != nil {
					return err
				}
				path, version, err = fetchServed(ctx, c, ref, dir)
				if err != nil {
					return explain(err, c.URL(), source)
				}
				if name == "" {
					name, _, _, _ = splitModelRef(ref)
				}
			}
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(filepath.Clean(path)), filepath.Ext(path))
			}
			opened, err := modeldir.Open(path)
			if err != nil {
				return errs.Invalid("%s cannot be served: %v", ref, err)
			}
			// A python_function model's workers are drained when serving
			// stops.
			defer func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				opened.Close(ctx)
			}()
			platform := opened.Runtime
			res := inference.Single(name, version, platform, opened.Model, opened.Features)
			mux := http.NewServeMux()
			srv := inference.Register(mux, res, inference.Options{ServerVersion: server.Version})
			mux.HandleFunc("POST /invocations", srv.ServeInvocations)
			mux.HandleFunc("GET /ping", srv.ServePing)
			mux.HandleFunc("GET /health", srv.ServePing)
			return serveHTTP(ctx, cmd, mux, net.JoinHostPort(host, strconv.Itoa(port)),
				fmt.Sprintf("serving %s (version %s, %s)", name, version, platform))
		},
	}
	urlFlag(cmd.Flags())
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to listen on")
	cmd.Flags().IntVar(&port, "port", 8080, "port to listen on (0: any free port)")
	cmd.Flags().StringVar(&name, "name", "", "the model's name in the protocols (default: the registered model's name, or the file's)")
	return cmd
}

// fetchServed downloads a registered version's files and returns their
// folder and the version number.
func fetchServed(ctx context.Context, cl *client.Client, ref, dir string) (string, string, error) {
	name, version, alias, err := splitModelRef(ref)
	if err != nil {
		return "", "", err
	}
	if alias != "" {
		mv, err := cl.GetModelVersionByAlias(ctx, name, alias)
		if err != nil {
			return "", "", err
		}
		version = mv.Version
	}
	path, err := fetchModel(ctx, cl, "models:/"+name+"/"+version, dir)
	return path, version, err
}

// serveHTTP listens on addr and serves handler until ctx ends, then shuts
// down, letting requests in flight finish.
func serveHTTP(ctx context.Context, cmd *cobra.Command, handler http.Handler, addr, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errs.Invalid("listening on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	front := &http1.Server{Handler: handler, Fast: inference.DataPlane, Fallback: srv,
		IdleTimeout: srv.IdleTimeout, ReadHeaderTimeout: srv.ReadHeaderTimeout}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s at http://%s\n", what, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- front.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := front.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
