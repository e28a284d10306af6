package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func letter(reason string) DeadLetter {
	return DeadLetter{Time: time.Unix(1, 0).UTC(), Pipeline: "ingest", Site: "dev-1", Batch: "b1",
		Reject: pipeline.Reject{Model: "Reading", Key: pipeline.Key{PK: "reading#dev-1", SK: "reading#1"}, Reason: reason}}
}

// readLetters reads a JSON-lines dead-letter file; every line must be a
// letter.
func readLetters(t *testing.T, path string) []DeadLetter {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []DeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var l DeadLetter
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %q", sc.Text())
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestBoundText(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		limit    int
		want     string
		changed  bool
	}{
		{"short", "abc", 10, "abc", false},
		{"exact", "abcdefghij", 10, "abcdefghij", false},
		{"cut", "abcdefghijk", 10, "abcdefg…", true},
		{"multibyte kept whole", "ééééé", 8, "éé…", true}, // 10 bytes; 5 left for runes: two é (4 bytes)
		{"invalid replaced", "a\xffb", 10, "a\uFFFDb", true},
		{"invalid run one replacement", "a\xff\xfe\xfdb", 10, "a\uFFFDb", true},
		{"invalid and long", strings.Repeat("\xff", 100), 10, "\uFFFD…", true},
		{"limit below ellipsis", "abcdef", 2, "", true},
		{"empty", "", 5, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := boundText(tc.in, tc.limit)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.changed, changed)
			assert.LessOrEqual(t, len(got), tc.limit)
			assert.True(t, utf8.ValidString(got))
		})
	}
}

// TestBoundTextProperties checks every cut of a mixed string: valid
// UTF-8, within the limit, a prefix of the input (up to the ellipsis).
func TestBoundTextProperties(t *testing.T) {
	in := strings.Repeat("aé€😀\xff", 40)
	valid := strings.ToValidUTF8(in, "\uFFFD")
	for limit := 3; limit < 300; limit++ {
		got, changed := boundText(in, limit)
		require.True(t, changed)
		require.LessOrEqual(t, len(got), limit, "limit %d", limit)
		require.True(t, utf8.ValidString(got), "limit %d: %q", limit, got)
		require.True(t, strings.HasSuffix(got, ellipsis), "limit %d: %q", limit, got)
		require.True(t, strings.HasPrefix(valid, strings.TrimSuffix(got, ellipsis)), "limit %d: %q", limit, got)
		require.Greater(t, len(got), limit-utf8.UTFMax-len(ellipsis), "limit %d: cut no more than one rune short", limit)
	}
}

// TestDeadLettersBoundEachLetter: a letter with a huge reason, model,
// key and payload, partly invalid UTF-8, is kept bounded in memory and
// in the file, and counted as truncated; a normal one is kept as is.
func TestDeadLettersBoundEachLetter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "deadletters.jsonl")
	d := newDeadLetters(path, 10)
	huge := letter(strings.Repeat("é", 100*1024) + "\xff")
	huge.Reject.Model = strings.Repeat("M", 100*1024)
	huge.Reject.Key = pipeline.Key{PK: strings.Repeat("p", 10*1024), SK: "s\xff\xfe"}
	huge.Payload = strings.Repeat("\x00\xff", 1<<20)
	huge.Batch = strings.Repeat("b", 10*1024)
	require.NoError(t, d.Add(letter("normal"), huge))

	check := func(where string, l DeadLetter) {
		t.Helper()
		assert.LessOrEqual(t, len(l.Reject.Reason), MaxDeadLetterReason, where)
		assert.True(t, strings.HasPrefix(l.Reject.Reason, "éé"), where)
		assert.True(t, strings.HasSuffix(l.Reject.Reason, ellipsis), where)
		assert.LessOrEqual(t, len(l.Reject.Model), MaxDeadLetterField, where)
		assert.LessOrEqual(t, len(l.Reject.Key.PK), MaxDeadLetterField, where)
		assert.Equal(t, "s\uFFFD", l.Reject.Key.SK, where)
		assert.LessOrEqual(t, len(l.Batch), MaxDeadLetterField, where)
		assert.LessOrEqual(t, len(l.Payload), MaxDeadLetterPayload, where)
		for _, s := range []string{l.Reject.Reason, l.Reject.Model, l.Reject.Key.PK, l.Reject.Key.SK, l.Payload, l.Batch} {
			assert.True(t, utf8.ValidString(s), where)
		}
	}
	recent, total := d.Recent()
	require.Len(t, recent, 2)
	assert.EqualValues(t, 2, total)
	assert.Equal(t, letter("normal"), recent[0], "a normal letter is kept as it is")
	check("memory", recent[1])

	onDisk := readLetters(t, path)
	require.Len(t, onDisk, 2)
	assert.Equal(t, letter("normal"), onDisk[0])
	check("file", onDisk[1])
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(16*1024), "the file holds two bounded letters")

	assert.Equal(t, DeadLetterTotals{Total: 2, Truncated: 1}, d.Totals())
}

// TestDeadLettersRotate: the file never exceeds its cap; when the next
// letter would take it over, it moves to deadletters.1.jsonl (the older
// one to .2), and only the configured number of old files is kept. No
// letter is lost from the files that are kept, in order.
func TestDeadLettersRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deadletters.jsonl")
	one, err := json.Marshal(letter("r-0000"))
	require.NoError(t, err)
	lineLen := int64(len(one) + 1)
	const perFile = 5
	d := newDeadLetters(path, 3, WithDeadLetterFile(perFile*lineLen, 2))

	const n = 23 // 4 full files and 3 letters
	for i := 0; i < n; i++ {
		// Some one at a time, some two in one Add (across a rotation at
		// 4-5 and 9-10).
		if i%5 == 4 && i+1 < n {
			require.NoError(t, d.Add(letter(reasonN(i)), letter(reasonN(i+1))))
			i++
			continue
		}
		require.NoError(t, d.Add(letter(reasonN(i))))
	}
	reasons := func(p string) []string {
		var out []string
		for _, l := range readLetters(t, p) {
			out = append(out, l.Reject.Reason)
		}
		return out
	}
	for _, p := range []string{path, filepath.Join(dir, "deadletters.1.jsonl"), filepath.Join(dir, "deadletters.2.jsonl")} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.LessOrEqual(t, st.Size(), perFile*lineLen, p)
	}
	// 23 letters: files of 5, 5, 5, 5, 3; the first two were rotated away.
	var all []string
	all = append(all, reasons(filepath.Join(dir, "deadletters.2.jsonl"))...)
	all = append(all, reasons(filepath.Join(dir, "deadletters.1.jsonl"))...)
	all = append(all, reasons(path)...)
	var want []string
	for i := 10; i < n; i++ {
		want = append(want, reasonN(i))
	}
	assert.Equal(t, want, all)
	_, err = os.Stat(filepath.Join(dir, "deadletters.3.jsonl"))
	assert.ErrorIs(t, err, os.ErrNotExist, "only two old files are kept")

	tot := d.Totals()
	assert.Equal(t, DeadLetterTotals{Total: n, Rotations: 4}, tot)
	recent, total := d.Recent()
	assert.EqualValues(t, n, total)
	require.Len(t, recent, 3, "memory keeps the last three")
	assert.Equal(t, reasonN(n-1), recent[2].Reject.Reason)
}

func reasonN(i int) string { return fmt.Sprintf("r-%04d", i) }

// TestDeadLettersNoOldFiles: with no old files kept the file starts over
// when full.
func TestDeadLettersNoOldFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deadletters.jsonl")
	one, _ := json.Marshal(letter("r-0000"))
	d := newDeadLetters(path, 10, WithDeadLetterFile(int64(2*(len(one)+1)), 0))
	for i := range 5 {
		require.NoError(t, d.Add(letter(reasonN(i))))
	}
	got := readLetters(t, path)
	require.Len(t, got, 1)
	assert.Equal(t, reasonN(4), got[0].Reject.Reason)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no old file")
	assert.EqualValues(t, 2, d.Totals().Rotations)
}

// TestDeadLettersDropTooLarge: a letter larger than the whole cap does
// not reach the file (counted as dropped) but stays in memory; the
// letters around it are written.
func TestDeadLettersDropTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deadletters.jsonl")
	d := newDeadLetters(path, 10, WithDeadLetterFile(600, 1))
	big := letter(strings.Repeat("x", 800)) // bounded to 1 KB, still over 600 bytes
	require.NoError(t, d.Add(letter("a"), big, letter("b")))
	got := readLetters(t, path)
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].Reject.Reason)
	assert.Equal(t, "b", got[1].Reject.Reason)
	recent, _ := d.Recent()
	assert.Len(t, recent, 3)
	assert.Equal(t, DeadLetterTotals{Total: 3, Dropped: 1}, d.Totals())
}

// TestDeadLettersFileMovedAway: an operator's own rotation (moving the
// file away) is safe: the next letter starts a new file, and a file left
// by an earlier run counts towards the cap.
func TestDeadLettersFileMovedAway(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deadletters.jsonl")
	one, _ := json.Marshal(letter("r-0000"))
	lineLen := len(one) + 1
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat(string(one)+"\n", 3)), 0o644))
	d := newDeadLetters(path, 10, WithDeadLetterFile(int64(4*lineLen), 1))
	require.NoError(t, d.Add(letter(reasonN(1))))
	assert.Len(t, readLetters(t, path), 4, "appended to the earlier run's file")
	require.NoError(t, d.Add(letter(reasonN(2))))
	assert.Len(t, readLetters(t, path), 1, "rotated: the earlier file was full")
	assert.Len(t, readLetters(t, filepath.Join(dir, "deadletters.1.jsonl")), 4)

	require.NoError(t, os.Rename(path, filepath.Join(dir, "moved.jsonl")))
	require.NoError(t, d.Add(letter(reasonN(3))))
	got := readLetters(t, path)
	require.Len(t, got, 1)
	assert.Equal(t, reasonN(3), got[0].Reject.Reason)
}

// TestDeadLettersWriteFails: when the file cannot be written the letter
// is still kept in memory and counted as dropped, and Add says why.
func TestDeadLettersWriteFails(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "data")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644)) // a file where the folder should be
	d := newDeadLetters(filepath.Join(blocker, "deadletters.jsonl"), 10)
	err := d.Add(letter("a"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dead letters")
	recent, total := d.Recent()
	assert.Len(t, recent, 1)
	assert.EqualValues(t, 1, total)
	assert.Equal(t, DeadLetterTotals{Total: 1, Dropped: 1}, d.Totals())
}

// TestDeadLettersDefaults: the constructor keeps its old form, with the
// default cap; no path means memory only.
func TestDeadLettersDefaults(t *testing.T) {
	d := newDeadLetters("", 2)
	assert.EqualValues(t, DefaultDeadLetterFileMax, d.maxBytes)
	assert.Equal(t, DefaultDeadLetterFiles, d.oldFiles)
	require.NoError(t, d.Add(letter("a"), letter("b"), letter("c")))
	recent, total := d.Recent()
	assert.Len(t, recent, 2)
	assert.EqualValues(t, 3, total)
	d = newDeadLetters("", 2, WithDeadLetterFile(0, -1))
	assert.EqualValues(t, DefaultDeadLetterFileMax, d.maxBytes, "0 keeps the default")
	assert.Equal(t, DefaultDeadLetterFiles, d.oldFiles, "-1 keeps the default")
}

// The plan's dead-letter file settings reach the keeper, and its counts
// are metrics.
func TestDeadLetterSettingsAndMetrics(t *testing.T) {
	plan := allInOne(t)
	plan.DeadLetters = filepath.Join(t.TempDir(), "deadletters.jsonl")
	plan.DeadLetterMax, plan.DeadLetterKeep = 128*1024, 5
	r, err := New(plan, Options{})
	require.NoError(t, err)
	require.Equal(t, int64(128*1024), r.dl.maxBytes)
	require.Equal(t, 5, r.dl.oldFiles)
	require.NoError(t, r.dl.Add(DeadLetter{Reject: pipeline.Reject{Reason: strings.Repeat("r", 5000)}}))
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "iotod_dead_letter") {
			got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{"iotod_dead_letters_total": 1, "iotod_dead_letters_truncated_total": 1,
		"iotod_dead_letters_dropped_total": 0, "iotod_dead_letter_file_rotations_total": 0}, got)

	def, err := New(allInOne(t), Options{})
	require.NoError(t, err)
	require.Equal(t, int64(DefaultDeadLetterFileMax), def.dl.maxBytes, "a plan without settings gets the defaults")
	require.Equal(t, DefaultDeadLetterFiles, def.dl.oldFiles)
}
