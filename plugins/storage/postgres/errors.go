package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iotod/iotod/pipeline"
)

// SQLSTATEs the store acts on.
const (
	codeSerialization = "40001" // serialization_failure: run the update again
	codeDeadlock      = "40P01" // deadlock_detected: run the update again
	codeTooLarge      = "54000" // program_limit_exceeded (a key over the btree's entry size)
	codeBadDatabase   = "3D000" // invalid_catalog_name: no such database
	codeNoPrivilege   = "42501" // insufficient_privilege
)

// sqlState is err's SQLSTATE, or "" when PostgreSQL did not send one.
func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// isConflict reports whether err is a serialization failure or a
// deadlock: the transaction was rolled back and may be run again.
func isConflict(err error) bool {
	c := sqlState(err)
	return c == codeSerialization || c == codeDeadlock
}

// fail wraps err from doing what with the server's place, its password
// scrubbed, marked as ErrTooLarge or permanent where retrying cannot help
// (authentication, no such database, no privilege); anything else (an
// unreachable server, a dropped connection) stays retryable.
func (s *Store) fail(what string, err error) error {
	err = s.scrub.wrap(err)
	switch c := sqlState(err); {
	case c == codeTooLarge:
		return fmt.Errorf("%s: %s: %w: %w", s.where, what, pipeline.ErrTooLarge, err)
	case strings.HasPrefix(c, "28"), c == codeBadDatabase, c == codeNoPrivilege:
		return pipeline.Permanent(fmt.Errorf("%s: %s: %w", s.where, what, err))
	}
	return fmt.Errorf("%s: %s: %w", s.where, what, err)
}

// scrubber removes a password from error messages: pgx does not put it in
// its errors, but a server or driver message quoting a connection string
// might, and this store never shows it.
type scrubber struct{ secrets []string }

func newScrubber(password string) scrubber {
	if password == "" {
		return scrubber{}
	}
	secrets := []string{password}
	for _, enc := range []string{url.QueryEscape(password), url.PathEscape(password), url.UserPassword("u", password).String()[2:]} {
		if enc != password {
			secrets = append(secrets, enc)
		}
	}
	return scrubber{secrets: secrets}
}

// string is s with every secret replaced by xxxxx.
func (sc scrubber) string(s string) string {
	for _, p := range sc.secrets {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}

// wrap returns err with its message scrubbed, still wrapping err.
func (sc scrubber) wrap(err error) error {
	if err == nil || len(sc.secrets) == 0 {
		return err
	}
	msg := err.Error()
	if clean := sc.string(msg); clean != msg {
		return scrubbed{msg: clean, err: err}
	}
	return err
}

type scrubbed struct {
	msg string
	err error
}

func (e scrubbed) Error() string { return e.msg }
func (e scrubbed) Unwrap() error { return e.err }
