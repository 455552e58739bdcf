package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/internal/server"
)

// Token commands open the server's database directly: whoever can read the
// database is already trusted, and this is how the first token is made on a
// server that requires one.
func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Manage API tokens (run where the server's database is reachable)",
	}
	addConfigFlags(cmd.PersistentFlags())

	var username, role string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print its secret once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := openApp(cmd)
			if err != nil {
				return err
			}
			defer app.Close()
			tok, secret, err := app.Auth.Create(cmd.Context(), args[0], username, role)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created token %s (id %s, user %s, role %s)\n", tok.Name, tok.ID, tok.Username, tok.Role)
			fmt.Fprintf(out, "secret (shown once): %s\n", secret)
			fmt.Fprintf(out, "use it as MLFLOW_TRACKING_TOKEN=%s\n", secret)
			return nil
		},
	}
	create.Flags().StringVar(&username, "user", "", "user the token acts as (default: the token name)")
	create.Flags().StringVar(&role, "role", "editor", "viewer, editor, approver or admin")

	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := openApp(cmd)
			if err != nil {
				return err
			}
			defer app.Close()
			toks, err := app.Auth.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tUSER\tROLE\tCREATED\tSTATE")
			for _, t := range toks {
				state := "active"
				if t.RevokedTime != nil {
					state = "revoked " + time.UnixMilli(*t.RevokedTime).UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Username, t.Role,
					time.UnixMilli(t.CreatedTime).UTC().Format(time.RFC3339), state)
			}
			return w.Flush()
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token; requests using it are refused from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := openApp(cmd)
			if err != nil {
				return err
			}
			defer app.Close()
			if err := app.Auth.Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func openApp(cmd *cobra.Command) (*server.App, error) {
	cfg, err := loadConfig(cmd.Flags())
	if err != nil {
		return nil, err
	}
	return server.Open(cmd.Context(), cfg)
}
