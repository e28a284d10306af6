package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iotod/iotod/errs"
)

// dump renders a schema as canonical text, so that schemas loaded from
// different formats can be compared.
func dump(s *Schema) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format=%s version=%s description=%q\nparams=%+v\n", s.Format, s.Version, s.Description, s.Params)
	for _, name := range s.IndexNames {
		fmt.Fprintf(&b, "index %+v\n", *s.Indexes[name])
	}
	for _, name := range s.ModelNames {
		m := s.Models[name]
		fmt.Fprintf(&b, "model %s process=%+v\n", name, m.Process)
		dumpFields(&b, "  ", m.Fields, m.FieldNames)
	}
	return b.String()
}

func dumpFields(b *strings.Builder, indent string, fields map[string]*Field, names []string) {
	for _, name := range names {
		f := fields[name]
		re := ""
		if f.Validate != nil {
			re = f.Validate.String()
		}
		fmt.Fprintf(b, "%s%s type=%s req=%v hidden=%v default=%T:%#v value=%q gen=%s/%d enum=%v re=%q/%q ttl=%v unique=%v partial=%v iso=%v\n",
			indent, name, f.Type, f.Required, f.Hidden, f.Default, f.Default, f.Value, f.Generate, f.GenerateSize, f.Enum,
			f.ValidateSource, re, f.TTL, f.Unique, deref(f.Partial), deref(f.IsoDates))
		if f.Schema != nil {
			dumpFields(b, indent+"  ", f.Schema, f.SchemaNames)
		}
		if f.Items != nil {
			dumpFields(b, indent+"  ", map[string]*Field{"[]": f.Items}, []string{"[]"})
		}
	}
}

func deref(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

func mustLoad(t *testing.T, path string) *Schema {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return s
}

func TestLoadGood(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*")
	if err != nil || len(files) < 5 {
		t.Fatalf("good schemas: %v %v", files, err)
	}
	files = append(files, "testdata/onetable-example.json5", "testdata/blend/main.json5")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s := mustLoad(t, f)
			if s.Primary() == nil || s.Primary().Hash == "" || s.IndexNames[0] != "primary" {
				t.Errorf("primary index missing: %+v", s.IndexNames)
			}
			if len(s.ModelNames) == 0 || !slices.IsSorted(s.ModelNames) {
				t.Errorf("model names %v: want some, sorted", s.ModelNames)
			}
			for _, name := range s.ModelNames {
				m := s.Models[name]
				if tf := m.Field(s.Params.TypeField); tf == nil || tf.Type != TypeString || !tf.Hidden {
					t.Errorf("%s: type field %q missing or not a hidden string: %+v", name, s.Params.TypeField, tf)
				}
				if len(m.FieldNames) != len(m.Fields) {
					t.Errorf("%s: %d field names for %d fields", name, len(m.FieldNames), len(m.Fields))
				}
			}
		})
	}
}

// The OneTable README schema written four ways must load the same.
func TestFormatsAgree(t *testing.T) {
	want := dump(mustLoad(t, "testdata/good/onetable-doc.json5"))
	for _, f := range []string{"onetable-doc-ctor.json5", "onetable-doc.json", "onetable-doc.yaml"} {
		if got := dump(mustLoad(t, filepath.Join("testdata/good", f))); got != want {
			t.Errorf("%s differs from onetable-doc.json5:\n%s\nwant:\n%s", f, got, want)
		}
	}
}

func TestOneTableExample(t *testing.T) {
	s := mustLoad(t, "testdata/onetable-example.json5")
	if s.Format != "onetable:1.1.0" || s.Version != "0.0.1" || !s.Params.IsoDates || s.Params.Timestamps != TimestampsBoth {
		t.Errorf("header or params wrong: %s %s %+v", s.Format, s.Version, s.Params)
	}
	if got := s.Params; got.TypeField != "_type" || got.CreatedField != "created" || got.UpdatedField != "updated" || got.Separator != "#" {
		t.Errorf("param defaults wrong: %+v", got)
	}
	if gs1 := s.Indexes["gs1"]; gs1 == nil || gs1.Hash != "gs1pk" || gs1.Sort != "gs1sk" || gs1.Project != ProjectAll || gs1.Local {
		t.Errorf("gs1 = %+v", gs1)
	}
	if !slices.Equal(s.IndexNames, []string{"primary", "gs1"}) || !slices.Equal(s.ModelNames, []string{"Account", "User"}) {
		t.Errorf("names: %v %v", s.IndexNames, s.ModelNames)
	}

	acct, err := s.Model("Account")
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"pk", "sk", "id", "name", "email", "status", "address", "_type", "created", "updated"}
	if !slices.Equal(acct.FieldNames, wantOrder) {
		t.Errorf("Account fields %v, want %v", acct.FieldNames, wantOrder)
	}
	if pk := acct.Field("pk"); pk.Value != "account#${id}" || !pk.Hidden || pk.Type != TypeString {
		t.Errorf("pk = %+v", pk)
	}
	if id := acct.Field("id"); id.Generate != "ulid" || id.Hidden {
		t.Errorf("id = %+v", id)
	}
	email := acct.Field("email")
	if email.Validate == nil || !email.Validate.MatchString("Ann@Example.COM") || email.Validate.MatchString("nope") {
		t.Errorf("email validate %v does not match as it should", email.Validate)
	}
	if st := acct.Field("status"); st.Default != "active" || !slices.Equal(st.Enum, []string{"active", "inactive"}) {
		t.Errorf("status = %+v", st)
	}
	addr := acct.Field("address")
	if addr.Type != TypeObject || !slices.Equal(addr.SchemaNames, []string{"street", "city", "zip"}) || addr.Schema["city"].Type != TypeString {
		t.Errorf("address = %+v", addr)
	}
	for _, name := range []string{"created", "updated"} {
		if f := acct.Field(name); f == nil || f.Type != TypeDate || f.Hidden {
			t.Errorf("%s = %+v, want a visible date", name, f)
		}
	}
	if tf := acct.Field("_type"); !tf.Required || !tf.Hidden {
		t.Errorf("_type = %+v", tf)
	}
	if acct.Process != (Process{Enable: SideBoth, Sync: SyncNone}) {
		t.Errorf("Account process %+v, want the defaults", acct.Process)
	}

	user, _ := s.Model("User")
	if user.Process != (Process{Enable: SideBoth, Sync: SyncUp}) || !user.Process.Syncs() {
		t.Errorf("User process = %+v", user.Process)
	}
	for name, typ := range map[string]Type{"registered": TypeDate, "age": TypeNumber, "gs1pk": TypeString} {
		if f := user.Field(name); f == nil || f.Type != typ {
			t.Errorf("User.%s = %+v, want %s", name, f, typ)
		}
	}
	if f := user.Field("gs1pk"); f.Value != "user#${name}" || !f.Hidden {
		t.Errorf("gs1pk = %+v", f)
	}
	if f := user.Field("accountId"); !f.Required {
		t.Errorf("accountId not required")
	}
}

func TestFeatures(t *testing.T) {
	s := mustLoad(t, "testdata/good/features.yml")
	if s.Params.TypeField != "kind" || s.Params.Timestamps != TimestampsUpdate || s.Params.Separator != ":" ||
		!s.Params.Nulls || !s.Params.Partial {
		t.Errorf("params = %+v", s.Params)
	}
	if ix := s.Indexes["ls1"]; !ix.Local || ix.Hash != "" || ix.Sort != "name" {
		t.Errorf("ls1 = %+v", ix)
	}
	if ix := s.Indexes["gs2"]; ix.Project != ProjectInclude || !slices.Equal(ix.ProjectAttrs, []string{"name", "level"}) || ix.Sort != "" {
		t.Errorf("gs2 = %+v", ix)
	}
	if ix := s.Indexes["gs1"]; ix.Project != ProjectKeys {
		t.Errorf("gs1 = %+v", ix)
	}
	sensor, _ := s.Model("Sensor")
	if sensor.Process != (Process{Enable: SideDevice, Sync: SyncUp}) {
		t.Errorf("Sensor process = %+v", sensor.Process)
	}
	checks := []struct {
		field string
		ok    func(f *Field) bool
	}{
		{"sk", func(f *Field) bool { return !f.Hidden && f.Value == "${kind}:${id:8:0}" }},
		{"id", func(f *Field) bool { return f.Generate == "uid" && f.GenerateSize == 8 }},
		{"name", func(f *Field) bool {
			return f.Unique && f.Validate.MatchString("abc") && !f.Validate.MatchString("ABC")
		}},
		{"level", func(f *Field) bool { return f.Default == 1.5 }},
		{"blob", func(f *Field) bool { return f.Type == TypeBinary }},
		{"tags", func(f *Field) bool { return f.Type == TypeSet }},
		{"seen", func(f *Field) bool { return f.TTL && f.IsoDates != nil && !*f.IsoDates }},
		{"on", func(f *Field) bool { return f.Type == TypeBoolean && f.Default == false }},
		{"meta", func(f *Field) bool {
			return f.Partial != nil && !*f.Partial && fmt.Sprint(f.Default) == "map[a:1]" &&
				f.Schema["loc"].Schema["lat"].Type == TypeNumber && f.Schema["unit"].Default == "C"
		}},
		{"readings", func(f *Field) bool {
			return f.Items != nil && f.Items.Type == TypeObject && slices.Equal(f.Items.SchemaNames, []string{"at", "value"})
		}},
		{"points", func(f *Field) bool { return f.Items != nil && f.Items.Schema["x"].Type == TypeNumber }},
		{"modified", func(f *Field) bool { return f.Type == TypeDate }},
		{"kind", func(f *Field) bool { return f.Required && f.Hidden }},
	}
	for _, c := range checks {
		if f := sensor.Field(c.field); f == nil || !c.ok(f) {
			t.Errorf("Sensor.%s = %+v", c.field, f)
		}
	}
	if sensor.Field("created") != nil {
		t.Errorf("timestamps: update must not add created")
	}
	cloudy, _ := s.Model("Cloudy")
	if sk := cloudy.Field("sk"); sk.Value != "cloudy:${id}" || sk.Hidden || sk.Type != TypeString {
		t.Errorf("Cloudy.sk (YAML merge key) = %+v", sk)
	}
	if id := cloudy.Field("id"); id.Generate != "ulid" {
		t.Errorf("generate: true gave %q, want ulid", id.Generate)
	}
}

func TestBlend(t *testing.T) {
	s := mustLoad(t, "testdata/blend/main.json5")
	if s.Version != "2.0.0" || s.Format != "onetable:1.1.0" || s.Description != "models" {
		t.Errorf("version %q format %q description %q: the including file and the later blend must win",
			s.Version, s.Format, s.Description)
	}
	if s.Params.Timestamps != TimestampsBoth {
		t.Errorf("params not blended: %+v", s.Params)
	}
	dev, err := s.Model("Device")
	if err != nil {
		t.Fatal(err)
	}
	if pk := dev.Field("pk"); pk.Value != "device#" {
		t.Errorf("Device.pk = %q: the including part must win over the part it blends", pk.Value)
	}
	if name := dev.Field("name"); name.Type != TypeString || !name.Required {
		t.Errorf("Device.name = %+v: fields must merge deeply", name)
	}
	if dev.Field("model") == nil {
		t.Errorf("Device.model from common.json lost")
	}
	if dev.Process != (Process{Enable: SideDevice, Sync: SyncUp}) {
		t.Errorf("Device process = %+v, want the blended enable and the main sync", dev.Process)
	}
	if _, err := s.Model("Log"); err != nil {
		t.Errorf("Log from the nested blend: %v", err)
	}
}

// Each bad schema must fail with exactly one fault, naming the file, the
// path and the problem, and wrapping errs.Invalid.
func TestBadSchemas(t *testing.T) {
	cases := []struct{ file, want string }{
		{"bad/unknown-type.json5", `models.Status.temp.type: unknown type "flaot"`},
		{"bad/missing-type.json5", "models.Status.temp.type: required"},
		{"bad/bad-sync.json5", `process.Status.sync: "sideways" is not one of up, down, both, none`},
		{"bad/bad-enable.json5", `process.Status.enable: "edge" is not one of cloud, device, both`},
		{"bad/process-unknown-model.json5", `process.Fault: no model "Fault" in models`},
		{"bad/process-unknown-key.json5", "process.Status.sink: unknown process property"},
		{"bad/sync-without-updated.json5", `process.Status.sync: a synced model needs an "updated" field`},
		{"bad/no-primary-hash.json5", "indexes.primary.hash: required"},
		{"bad/no-primary.json5", "indexes.primary: required"},
		{"bad/bad-format.json5", `format: "onetable:2.0.0" is not supported`},
		{"bad/no-version.json5", "version: required"},
		{"bad/bad-model-name.json5", "models.9Lives: model name must match"},
		{"bad/missing-sort-field.json5", `models.Status: field "sk" required by indexes.primary.sort`},
		{"bad/template-unknown-field.json5", "models.Status.sk.value: ${ident} names no field of the model"},
		{"bad/template-bad-size.json5", `models.Status.sk.value: ${id:x}: size "x" is not a positive integer`},
		{"bad/template-cycle.json5", "models.Status.a.value: template cycle a -> b -> a"},
		{"bad/bad-generate.json5", `models.Status.id.generate: "uid(65)": the uid size must be 1 to 64`},
		{"bad/bad-generate-kind.json5", `models.Status.id.generate: "sequence" is not one of`},
		{"bad/bad-regex.json5", "models.Status.email.validate: regular expression /(abc/: error parsing regexp"},
		{"bad/bad-regex-flag.json5", "models.Status.email.validate: regular expression /abc/q: unknown flag 'q'"},
		{"bad/unknown-field-prop.json5", "models.Status.temp.colour: unknown field property"},
		{"bad/uuid-prop.json5", "models.Status.id.uuid: deprecated"},
		{"bad/enum-default.json5", `models.Status.state.default: "gone" is not one of the enum values on, off`},
		{"bad/default-type.json5", `models.Status.temp.default: "hot" is not a number`},
		{"bad/bad-timestamps.json5", `params.timestamps: "always" is not one of`},
		{"bad/unknown-param.json5", "params.isoDate: unknown param"},
		{"bad/unknown-top-level.json5", "tables: unknown top-level property"},
		{"bad/bad-project.json5", `indexes.gs1.project: "some" is not one of all, keys`},
		{"bad/lsi-no-sort.json5", "indexes.ls1.sort: required for a local index"},
		{"bad/nested-bad-type.json5", `models.Status.address.schema.zip.type: unknown type "integer"`},
		{"bad/schema-on-string.json5", "models.Status.address.schema: only object and array fields take a nested schema"},
		{"bad/ttl-on-string.json5", "models.Status.temp.ttl: a ttl field must be a date or number"},
		{"bad/type-field-number.json5", "models.Status._type.type: the type field (params.typeField) must be a string"},
		{"bad/syntax.json5", "syntax: line 11, column 36"},
		{"bad/bad-json.json", "syntax: line 3"},
		{"bad/bad-yaml.yaml", `models.Status.id: must be an object, not "string"`},
		{"blend/missing.json5", "blend/missing.json5: blend[1]: open parts/x.json5: no such file or directory"},
		{"blend/cycle-a.json5", "cycle-b.json5: blend[0]: include cycle: cycle-a.json5 -> cycle-b.json5 -> cycle-a.json5"},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.file] = true
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			if !errors.Is(err, errs.Invalid) {
				t.Errorf("error %v does not wrap errs.Invalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, c.want)
			}
			faults := Faults(err)
			if len(faults) != 1 {
				t.Errorf("%d faults, want 1: %v", len(faults), err)
			}
			if len(faults) > 0 && !strings.HasPrefix(faults[0].Source, "testdata/") {
				t.Errorf("fault source %q does not name the file", faults[0].Source)
			}
		})
	}
	// Every file in testdata/bad must be in the table.
	files, _ := filepath.Glob("testdata/bad/*")
	for _, f := range files {
		rel, _ := filepath.Rel("testdata", f)
		if !covered[filepath.ToSlash(rel)] && filepath.Base(f) != "many-faults.json5" {
			t.Errorf("%s has no case in the table", f)
		}
	}
}

func TestManyFaults(t *testing.T) {
	_, err := Load("testdata/bad/many-faults.json5")
	want := []string{
		`models.Status.temp.type: unknown type "flaot"`,
		"models.Status.email.validate: regular expression /[/",
		`process.Status.sync: "sideways" is not one of`,
		`process.Ghost: no model "Ghost" in models`,
	}
	faults := Faults(err)
	if len(faults) != len(want) {
		t.Fatalf("%d faults, want %d: %v", len(faults), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(faults[i].Error(), w) {
			t.Errorf("fault %d = %v, want %s", i, faults[i], w)
		}
	}
	var f *Fault
	if !errors.As(err, &f) || f.Path != "models.Status.temp.type" || f.Source != "testdata/bad/many-faults.json5" {
		t.Errorf("errors.As gave %+v", f)
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load("testdata/nope.json5")
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, errs.Invalid) {
		t.Errorf("missing file: %v; want fs.ErrNotExist, not ErrInvalid", err)
	}
	dir := t.TempDir()
	odd := filepath.Join(dir, "schema.toml")
	if err := os.WriteFile(odd, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(odd)
	if !errors.Is(err, errs.Invalid) || !strings.Contains(err.Error(), `unknown file extension ".toml"`) {
		t.Errorf("odd extension: %v", err)
	}
}
