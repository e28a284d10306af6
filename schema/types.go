// Package schema loads and checks OneTable 1.1 schemas, with iotod's
// per-model `process` rules, and describes their models and fields.
package schema

import "regexp"

// Type is a field type, as OneTable names it (lower case).
type Type string

// The field types of OneTable.
const (
	TypeString  Type = "string"
	TypeNumber  Type = "number"
	TypeBoolean Type = "boolean"
	TypeDate    Type = "date"
	TypeObject  Type = "object"
	TypeArray   Type = "array"
	TypeBinary  Type = "binary"
	TypeSet     Type = "set"
)

// Side is where a model lives.
type Side string

// Enable values.
const (
	SideCloud  Side = "cloud"
	SideDevice Side = "device"
	SideBoth   Side = "both"
)

// Direction is which way a model's changes replicate.
type Direction string

// Sync values.
const (
	SyncUp   Direction = "up"
	SyncDown Direction = "down"
	SyncBoth Direction = "both"
	SyncNone Direction = "none"
)

// Timestamps says which timestamp fields are set automatically.
type Timestamps string

// Timestamps values; "" means none. `timestamps: true` loads as TimestampsBoth.
const (
	TimestampsNone   Timestamps = ""
	TimestampsBoth   Timestamps = "both"
	TimestampsCreate Timestamps = "create"
	TimestampsUpdate Timestamps = "update"
)

// Schema is a loaded, checked schema.
type Schema struct {
	Format      string
	Version     string
	Description string
	// Indexes by name; "primary" is always present.
	Indexes map[string]*Index
	// IndexNames lists index names in a stable order: primary first, then
	// the others sorted.
	IndexNames []string
	Models     map[string]*Model
	// ModelNames lists model names sorted.
	ModelNames []string
	Params     Params
}

// Index is one of the schema's indexes.
type Index struct {
	Name string
	Hash string // attribute name of the hash key ("" for a local index: the primary hash is used)
	Sort string // attribute name of the sort key ("" if none)
	// Local is true for `type: 'local'` (an LSI).
	Local bool
	// Project is "all" (default), "keys", or a list of attributes in
	// ProjectAttrs.
	Project      string
	ProjectAttrs []string
}

// Params are the schema's table-wide parameters, with OneTable's defaults
// applied: TypeField "_type", CreatedField "created", UpdatedField
// "updated", Separator "#".
type Params struct {
	IsoDates     bool
	Nulls        bool
	Timestamps   Timestamps
	TypeField    string
	CreatedField string
	UpdatedField string
	Separator    string
	// Partial is the default for nested object updates (OneTable's table
	// `partial`, default false).
	Partial bool
}

// Process is a model's replication rule from the schema's `process` map.
type Process struct {
	Enable Side      // default SideBoth
	Sync   Direction // default SyncNone
}

// Model is one model of the schema.
type Model struct {
	Name   string
	Fields map[string]*Field
	// FieldNames lists field names in declaration order.
	FieldNames []string
	Process    Process
}

// Field is one attribute of a model, or of a nested schema.
type Field struct {
	Name     string
	Type     Type
	Required bool
	// Hidden says the field is left out of results unless asked for. When
	// the schema does not say, fields with a Value template and the type
	// field are hidden, as in OneTable.
	Hidden  bool
	Default any
	// Value is a template such as "${_type}#${id}" or "${id:8:0}".
	Value string
	// Generate is "ulid", "uuid" or "uid"; GenerateSize is N of uid(N)
	// (10 for plain uid).
	Generate     string
	GenerateSize int
	Enum         []string
	// Validate is the compiled `validate` regular expression, if any;
	// ValidateSource is its text as written.
	Validate       *regexp.Regexp
	ValidateSource string
	TTL            bool
	// Partial overrides Params.Partial for this nested object; nil means
	// unset.
	Partial *bool
	// Unique is parsed and kept but not enforced on the device.
	Unique bool
	// IsoDates overrides Params.IsoDates for this date field; nil means unset.
	IsoDates *bool
	// Schema is the nested schema of an object field (`schema`).
	Schema map[string]*Field
	// SchemaNames lists nested field names in declaration order.
	SchemaNames []string
	// Items describes array elements (`items`), if given.
	Items *Field
}
