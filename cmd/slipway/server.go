package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/server"
)

// addConfigFlags declares one flag per server setting; values are read back
// through loadConfig so that flag, environment and file agree on precedence.
func addConfigFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file (env SLIPWAY_CONFIG); unknown keys are errors")
	for _, s := range server.Settings {
		fs.String(s.Name, s.Default(), s.Usage+" (env "+s.Env()+")")
	}
	// Boolean settings read naturally as switches: --insecure-no-auth.
	for _, name := range []string{"auth", "insecure-no-auth"} {
		fs.Lookup(name).NoOptDefVal = "true"
	}
}

func loadConfig(fs *pflag.FlagSet) (server.Config, error) {
	set := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = f.Value.String() })
	file := set["config"]
	if file == "" {
		file = os.Getenv("SLIPWAY_CONFIG")
	}
	cfg, err := server.LoadConfig(file, os.Getenv, set)
	if err != nil {
		return cfg, errs.Invalid("%v", err)
	}
	return cfg, nil
}

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Slipway server (MLflow-compatible tracking API and artifact proxy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			log := server.NewLogger(cmd.ErrOrStderr(), cfg)
			return server.Run(cmd.Context(), cfg, log, nil)
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the Slipway version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "slipway", server.Version)
			return nil
		},
	}
}
