package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

func testOpen(t *testing.T, path string) (*Store, error) {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Path = path
	s, err := Open(t.Context(), cfg, nil)
	if err == nil {
		t.Cleanup(func() { _ = s.Close(context.Background()) })
	}
	return s, err
}

func put(ctx context.Context, s *Store, pk, sk, item string) error {
	return s.Update(ctx, func(tx pipeline.Tx) error {
		return tx.Put(ctx, &pipeline.Record{Key: pipeline.Key{PK: pk, SK: sk}, Model: "M", Item: []byte(item)})
	})
}

// TestCorruptFileIsRefusedAndKept: a damaged database file, or a file that
// is not a database, is an error naming the file, never a silent reset:
// the file is left byte for byte as it was.
func TestCorruptFileIsRefusedAndKept(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := testOpen(t, good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := put(t.Context(), s, "p", strings.Repeat("k", 50)+string(rune('a'+i%26))+string(rune('a'+i/26)), `{"v":"`+strings.Repeat("x", 500)+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), data...)
	for i := 4096 + 100; i < len(damaged) && i < 4096*3; i++ { // the second and third pages
		damaged[i] ^= 0x5a
	}
	notDB := bytes.Repeat([]byte("this is not a database\n"), 300)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"damaged.db", damaged},
		{"text.db", notDB},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := testOpen(t, path)
		if err == nil {
			t.Fatalf("%s: opened", tc.name)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", tc.name, err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, tc.data) {
			t.Errorf("%s: the refused file was changed", tc.name)
		}
	}
}

// TestForeignSQLiteFileIsRefused: a SQLite database of another program is
// not taken over.
func TestForeignSQLiteFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	s, err := testOpen(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.Exec("DROP TABLE iotod_meta"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close(t.Context())
	_, err = testOpen(t, path)
	if err == nil || !strings.Contains(err.Error(), "not an iotod store") {
		t.Fatalf("open of a foreign SQLite file: %v, want a refusal", err)
	}
}

// TestFullDiskFailsTheWriteAndHarmsNothing fills the database (SQLite's
// own page limit, which fails exactly as a full disk does: SQLITE_FULL)
// and checks the write that does not fit fails with an error saying so,
// writes nothing, and leaves what was stored readable; writes resume when
// there is room again.
func TestFullDiskFailsTheWriteAndHarmsNothing(t *testing.T) {
	ctx := t.Context()
	s, err := testOpen(t, filepath.Join(t.TempDir(), "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, s, "p", "kept", `{"v":1}`); err != nil {
		t.Fatal(err)
	}
	var pages int64
	if err := s.writer.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.Exec("PRAGMA max_page_count = " + strconv.FormatInt(pages+2, 10)); err != nil {
		t.Fatal(err)
	}
	big := `{"v":"` + strings.Repeat("x", 64<<10) + `"}`
	var full error
	for i := 0; i < 50 && full == nil; i++ {
		full = put(ctx, s, "p", "big"+strconv.Itoa(i), big)
	}
	if full == nil || !strings.Contains(full.Error(), "disk is full") {
		t.Fatalf("writes into a full database: %v, want an error saying the disk is full", full)
	}
	err = s.View(ctx, func(tx pipeline.ReadTx) error {
		r, err := tx.Get(ctx, pipeline.Key{PK: "p", SK: "kept"})
		if err == nil && string(r.Item) != `{"v":1}` {
			err = errors.New("the stored item changed: " + string(r.Item))
		}
		return err
	})
	if err != nil {
		t.Fatalf("after the full write: %v", err)
	}
	if _, err := s.writer.Exec("PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, s, "p", "after", big); err != nil {
		t.Fatalf("a write once there is room again: %v", err)
	}
}
