package db

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// DynamoDB's number limits, which every store keeps so that an item valid
// on a device is valid in the cloud: at most 38 significant digits, and a
// magnitude of zero or between 1e-130 and 1e126 (exclusive).
const (
	maxNumberDigits = 38
	minNumberExp    = -130 // smallest decimal exponent of a non-zero number
	maxNumberExp    = 125  // largest decimal exponent
)

// checkNumber refuses a JSON number a cloud store could not keep exactly:
// too many significant digits, or a magnitude out of range (which float
// parsing would turn into infinity or silently into zero).
func checkNumber(s string) error {
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return fmt.Errorf("number %s: exponent out of range", pipeline.Quote(s))
		}
		mant, exp = s[:i], e
	}
	mant = strings.TrimLeft(mant, "+-")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	// the decimal exponent of the first significant digit
	lead := exp + len(intPart) - 1 - (len(intPart+frac) - len(strings.TrimLeft(intPart+frac, "0")))
	digits = strings.TrimRight(digits, "0")
	switch {
	case digits == "":
		return nil // zero
	case len(digits) > maxNumberDigits:
		return fmt.Errorf("number %s has %d significant digits, over %d", pipeline.Quote(s), len(digits), maxNumberDigits)
	case lead > maxNumberExp || lead < minNumberExp:
		return fmt.Errorf("number %s is out of range (magnitude 1e-130 to 1e126)", pipeline.Quote(s))
	}
	return nil
}
