package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// queryParams lists the query parameters of the model endpoints.
var queryParams = []string{"count", "exists", "fields", "hidden", "index", "limit", "many", "next",
	"partial", "reverse", "storage", "substitutions", "where"}

// paramsFromQuery reads db.Params from a raw query string. Each parameter
// may appear once; a boolean given without a value ("?many") is true.
func paramsFromQuery(raw string) (*db.Params, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed query string: %v", pipeline.ErrInvalid, err)
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	p := &db.Params{}
	var errs []string
	for _, name := range names {
		if len(q[name]) > 1 {
			errs = append(errs, fmt.Sprintf("query parameter %s is given %d times", name, len(q[name])))
			continue
		}
		if err := setParam(p, name, q[name][0]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", pipeline.ErrInvalid, strings.Join(errs, "; "))
	}
	return p, nil
}

func setParam(p *db.Params, name, v string) error {
	var err error
	switch name {
	case "limit":
		p.Limit, err = strconv.Atoi(v)
		if err != nil || p.Limit < 0 {
			return fmt.Errorf("query parameter limit: want a non-negative integer, got %q (0: the default page of %d items; over %d: pages of %d)",
				v, db.DefaultLimit, db.MaxLimit, db.MaxLimit)
		}
	case "next":
		p.Next = v
	case "index":
		p.Index = v
	case "storage":
		// chooses the store; read by the handler, not a db param
	case "where":
		p.Where = v
	case "fields":
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				p.Fields = append(p.Fields, f)
			}
		}
		if len(p.Fields) == 0 {
			return fmt.Errorf("query parameter fields: want a comma-separated list of attribute names, got %q", v)
		}
	case "substitutions":
		dec := json.NewDecoder(bytes.NewReader([]byte(v)))
		dec.UseNumber()
		if err := dec.Decode(&p.Substitutions); err != nil || p.Substitutions == nil || dec.More() {
			return fmt.Errorf("query parameter substitutions: want a JSON object, got %q", v)
		}
	case "reverse":
		p.Reverse, err = parseBool(name, v)
	case "count":
		p.Count, err = parseBool(name, v)
	case "many":
		p.Many, err = parseBool(name, v)
	case "hidden":
		p.Hidden, err = parseBool(name, v)
	case "exists":
		p.Exists, err = parseBoolPtr(name, v)
	case "partial":
		p.Partial, err = parseBoolPtr(name, v)
	default:
		return fmt.Errorf("unknown query parameter %q (known: %s)", name, strings.Join(queryParams, ", "))
	}
	return err
}

func parseBool(name, v string) (bool, error) {
	switch v {
	case "", "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("query parameter %s: want true or false, got %q", name, v)
}

func parseBoolPtr(name, v string) (*bool, error) {
	b, err := parseBool(name, v)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// paramsToQuery is the inverse of paramsFromQuery.
func paramsToQuery(p *db.Params) (string, error) {
	q := url.Values{}
	if p == nil {
		return "", nil
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	setString(q, "next", p.Next)
	setString(q, "index", p.Index)
	setString(q, "where", p.Where)
	if len(p.Fields) > 0 {
		q.Set("fields", strings.Join(p.Fields, ","))
	}
	if p.Substitutions != nil {
		b, err := json.Marshal(p.Substitutions)
		if err != nil {
			return "", fmt.Errorf("encode substitutions: %w", err)
		}
		q.Set("substitutions", string(b))
	}
	for name, b := range map[string]bool{"reverse": p.Reverse, "count": p.Count, "many": p.Many, "hidden": p.Hidden} {
		if b {
			q.Set(name, "true")
		}
	}
	for name, b := range map[string]*bool{"exists": p.Exists, "partial": p.Partial} {
		if b != nil {
			q.Set(name, strconv.FormatBool(*b))
		}
	}
	return q.Encode(), nil
}

func setString(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}
