package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/db"
)

// dbFlags are the flags of every `iotod db` command.
type dbFlags struct {
	addr, socket string
	storage      string
	params       db.Params
}

func newDBCmd() *cobra.Command {
	f := &dbFlags{}
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Call the database of a running iotod through its API",
		Long: `Each command takes a model name and the item's properties as a JSON object
('-' reads it from stdin; omitted means {}), prints the result as JSON, and
exits non-zero with a one-line error on failure. Flags may follow the
arguments:

  iotod db create Status '{"temp": 21.5, "state": "on"}'
  iotod db find Status --where '${temp} > {20}' --limit 10`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.addr, "addr", "", "API address (default: api.listen of the config, else http://"+config.DefaultListen+")")
	pf.StringVar(&f.socket, "socket", "", "API unix socket (default: api.socket of the config)")
	pf.StringVar(&f.storage, "storage", "", "the store to address by its name in the config (default: the device's local store), e.g. cloud in the all-in-one setup")
	for _, op := range []string{"create", "get", "find", "update", "upsert", "remove"} {
		sub := &cobra.Command{
			Use:   op + " MODEL ['JSON']",
			Short: strings.ToUpper(op[:1]) + op[1:] + " items of MODEL",
			Args:  cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				// The API's errors are one line already; a local one may not be.
				if err := f.call(cmd, op, args); err != nil {
					return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
				}
				return nil
			},
		}
		opFlags(sub, op, &f.params)
		cmd.AddCommand(sub)
	}
	return cmd
}

// opFlags gives the command of op the params it takes, bound to p.
func opFlags(cmd *cobra.Command, op string, p *db.Params) {
	fs := cmd.Flags()
	if op == "find" {
		fs.IntVar(&p.Limit, "limit", 0, "return at most this many items: a page (default 100, at most 1000)")
		fs.StringVar(&p.Next, "next", "", "resume after the page that returned this cursor")
		fs.BoolVar(&p.Reverse, "reverse", false, "descending sort-key order")
		fs.BoolVar(&p.Count, "count", false, "return only the number of matching items")
	}
	if op == "find" || op == "remove" {
		fs.StringVar(&p.Index, "index", "", "query this secondary index")
		fs.StringVar(&p.Where, "where", "", "filter, such as '${temp} > {20}'")
	}
	if op == "remove" {
		fs.BoolVar(&p.Many, "many", false, "remove every item a partial key matches")
		return
	}
	fs.StringSliceVar(&p.Fields, "fields", nil, "return only these attributes (comma list)")
	fs.BoolVar(&p.Hidden, "hidden", false, "include hidden attributes (keys, type)")
}

// call runs op with args (MODEL and optional JSON) and prints the result.
func (f *dbFlags) call(cmd *cobra.Command, op string, args []string) error {
	props := db.Item{}
	if len(args) == 2 {
		var err error
		if props, err = parseItem(args[1], cmd.InOrStdin()); err != nil {
			return err
		}
	}
	client, err := f.client(cmd)
	if err != nil {
		return err
	}
	client.Storage = f.storage
	ctx, model, p := cmd.Context(), args[0], &f.params
	var out any
	switch op {
	case "create":
		out, err = client.Create(ctx, model, props, p)
	case "get":
		out, err = client.Get(ctx, model, props, p)
	case "find":
		out, err = client.Find(ctx, model, props, p)
	case "update":
		out, err = client.Update(ctx, model, props, p)
	case "upsert":
		out, err = client.Upsert(ctx, model, props, p)
	case "remove":
		var n int
		n, err = client.Remove(ctx, model, props, p)
		out = api.Removed{Removed: n}
	}
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), out)
}

// client connects to the API named by --addr or --socket, else by the
// config file (if there is one), else at the default address.
func (f *dbFlags) client(cmd *cobra.Command) (*api.Client, error) {
	if f.addr != "" || f.socket != "" {
		return api.NewClient(f.addr, f.socket)
	}
	cfg, err := loadConfig(configFiles(cmd)...)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !cmd.Flag("config").Changed:
		return api.NewClient(config.DefaultListen, "")
	case err != nil:
		return nil, fmt.Errorf("find the API address: %w", err)
	}
	return api.NewClient(cfg.API.Listen, cfg.API.Socket)
}

// parseItem decodes a JSON object ("-" reads stdin), keeping numbers exact.
func parseItem(arg string, stdin io.Reader) (db.Item, error) {
	data := []byte(arg)
	if arg == "-" {
		var err error
		if data, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("read the item from stdin: %w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var item db.Item
	switch err := dec.Decode(&item); {
	case errors.Is(err, io.EOF):
		return nil, errors.New("the item is empty: give a JSON object, such as '{\"id\": \"x\"}'")
	case err != nil:
		return nil, errors.New(api.DescribeJSONError("the item", data, err))
	case item == nil:
		return nil, errors.New("the item must be a JSON object, such as '{\"id\": \"x\"}', not null")
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err == nil || !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("the item must be one JSON object: there is more after it, at %s", api.JSONPosition(data, end))
	}
	return item, nil
}
