package pipeline

import (
	"errors"
	"testing"
	"time"
)

func TestRecordCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *Record
		ok   bool
	}{
		{"nil", nil, false},
		{"empty pk", &Record{Key: Key{SK: "s"}}, false},
		{"negative expiry", &Record{Key: Key{PK: "p"}, Expires: -1}, false},
		{"entry without index", &Record{Key: Key{PK: "p"}, Indexes: []IndexEntry{{Hash: "h"}}}, false},
		{"entry naming primary", &Record{Key: Key{PK: "p"}, Indexes: []IndexEntry{{Index: PrimaryIndex, Hash: "h"}}}, false},
		{"empty sk", &Record{Key: Key{PK: "p"}}, true},
		{"full", &Record{Key: Key{PK: "p", SK: "s"}, Expires: 1, Indexes: []IndexEntry{{Index: "gs1", Hash: "h"}}}, true},
	} {
		err := tc.rec.Check()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Check() = %v, want ok=%v (else ErrInvalid)", tc.name, err, tc.ok)
		}
	}
}

func TestStoreGate(t *testing.T) {
	var g StoreGate
	if err := g.Enter("s"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error)
	runs := 0
	go func() { closed <- g.Close(func() error { runs++; return errors.New("closing") }) }()
	time.Sleep(20 * time.Millisecond) // Close has had time to get past a gate that would not wait
	select {
	case <-closed:
		t.Fatal("Close did not wait for the operation in progress")
	default:
	}
	g.Leave()
	if err := <-closed; err == nil || err.Error() != "closing" {
		t.Fatalf("Close = %v, want closeFn's error", err)
	}
	if err := g.Close(func() error { runs++; return nil }); err != nil || runs != 1 {
		t.Fatalf("second Close = %v, closeFn ran %d times, want once", err, runs)
	}
	if err := g.Enter("store x"); !errors.Is(err, ErrClosed) || err.Error() != "store x: "+ErrClosed.Error() {
		t.Fatalf("Enter after Close = %v, want ErrClosed naming the store", err)
	}
}
