package db

import "github.com/iotod/iotod/pipeline"

// Item is one item as the API returns and accepts it: a JSON object.
type Item = map[string]any

// Params tune one operation, as OneTable's params do. The zero value is the
// default for every operation.
type Params struct {
	// Limit caps the items a find returns: one page (it counts returned
	// items, after the where filter). Zero means DefaultLimit; a limit over
	// MaxLimit is lowered to MaxLimit; a negative one is invalid. A page
	// that stopped at its limit with more matches after it has a Next. A
	// Count find counts every match unless Limit is set; then it counts up
	// to Limit (MaxLimit does not apply: it returns no items) and has a Next
	// when more match.
	Limit int `json:"limit,omitempty"`
	// Next resumes a find after the page that returned it.
	Next string `json:"next,omitempty"`
	// Index names a secondary index from the schema to query.
	Index string `json:"index,omitempty"`
	// Where is a filter in OneTable syntax: "${temp} > {20} and ${status} = {on}".
	Where string `json:"where,omitempty"`
	// Substitutions fill @{name} placeholders of Where.
	Substitutions map[string]any `json:"substitutions,omitempty"`
	// Reverse returns a find in descending sort-key order.
	Reverse bool `json:"reverse,omitempty"`
	// Fields projects results to these attributes.
	Fields []string `json:"fields,omitempty"`
	// Count makes a find return only the number of matching items.
	Count bool `json:"count,omitempty"`
	// Many lets remove delete every item a partial key matches.
	Many bool `json:"many,omitempty"`
	// Hidden includes hidden attributes (keys, type, version) in results.
	Hidden bool `json:"hidden,omitempty"`
	// Exists sets what an update requires: true (default for update) needs
	// the item to exist, false (default for create) needs it absent, nil
	// (upsert) takes either.
	Exists *bool `json:"exists,omitempty"`
	// Partial overrides the schema's partial setting for nested objects.
	Partial *bool `json:"partial,omitempty"`
	// Shared lets a find return the read cache's own maps of the items it
	// holds instead of copies: for callers that only read the items (encode
	// them, compare them) and never change them, as the local API does.
	// Changing a shared item changes what later reads return. Items are
	// always shared below their top level (nested objects and arrays are not
	// copied), with or without Shared. Not settable from JSON.
	Shared bool `json:"-"`
}

// Page sizes of a find.
const (
	// DefaultLimit is the page size of a find that sets no limit.
	DefaultLimit = 100
	// MaxLimit is the largest page a find returns: a larger limit is
	// lowered to it, and the page's Next continues after it, as a
	// DynamoDB query stops at 1 MB whatever its limit.
	MaxLimit = 1000
)

// Result is a page of a find.
type Result struct {
	Items []Item `json:"items"`
	// Next is set when more items follow (the page stopped at its limit);
	// pass it as Params.Next for the next page. Empty: this is the last.
	Next string `json:"next,omitempty"`
	// Count is set for Params.Count finds.
	Count int `json:"count"`
}

// WriteOp is one write of a batch or transaction.
type WriteOp struct {
	Op     pipeline.Op `json:"op"`
	Model  string      `json:"model"`
	Item   Item        `json:"item"`
	Params *Params     `json:"params,omitempty"`
}
