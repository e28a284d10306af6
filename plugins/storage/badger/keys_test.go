package badger

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

// tupleStrings draws short strings over an alphabet of the bytes that
// matter to the escaping.
func tupleString(r *rand.Rand) string {
	alphabet := []byte{0x00, 0x01, 0x02, '#', 'a', 'b', 0xFE, 0xFF}
	b := make([]byte, r.IntN(4))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestIndexKeyOrderIsTupleOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type tuple struct{ hash, sort, pk, sk string }
	tuples := make([]tuple, 3000)
	for i := range tuples {
		tuples[i] = tuple{tupleString(r), tupleString(r), tupleString(r), tupleString(r)}
	}
	key := func(tp tuple) []byte {
		return indexKey(pipeline.IndexEntry{Index: "gs1", Hash: tp.hash, Sort: tp.sort}, pipeline.Key{PK: tp.pk, SK: tp.sk})
	}
	byTuple := slices.Clone(tuples)
	slices.SortFunc(byTuple, func(a, b tuple) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.sort, b.sort), cmp.Compare(a.pk, b.pk), cmp.Compare(a.sk, b.sk))
	})
	byKey := slices.Clone(tuples)
	slices.SortFunc(byKey, func(a, b tuple) int { return bytes.Compare(key(a), key(b)) })
	for i := range byKey {
		if byKey[i] != byTuple[i] && !bytes.Equal(key(byKey[i]), key(byTuple[i])) {
			t.Fatalf("position %d: key order gives %q, tuple order %q", i, byKey[i], byTuple[i])
		}
	}
	// Distinct tuples never share a key, and every key decodes back.
	seen := map[string]tuple{}
	for _, tp := range tuples {
		k := key(tp)
		if prev, ok := seen[string(k)]; ok && prev != tp {
			t.Fatalf("tuples %q and %q share key %q", prev, tp, k)
		}
		seen[string(k)] = tp
		rest := k[len(indexSpace("gs1")):]
		var got tuple
		var err error
		for _, f := range []*string{&got.hash, &got.sort, &got.pk, &got.sk} {
			if *f, rest, err = readString(rest); err != nil {
				t.Fatalf("decode %q: %v", k, err)
			}
		}
		if got != tp || len(rest) != 0 {
			t.Fatalf("decode %q: got %q rest %q, want %q", k, got, rest, tp)
		}
	}
}

func TestReadStringRejectsMalformed(t *testing.T) {
	for _, b := range [][]byte{{}, {'a'}, {'a', 0}, {0, 0x02}, {0, 0xFF}} {
		if _, _, err := readString(b); err == nil {
			t.Errorf("readString(%q) succeeded", b)
		}
	}
}
