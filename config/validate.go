package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/iotod/iotod/plugins/storage/badger"
)

var (
	// siteID keeps a site id usable in MQTT topics and file names.
	siteID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// componentName is the form of storage names.
	componentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

// maxSocketPath is the longest unix socket path every platform accepts.
const maxSocketPath = 104

// validator checks the meaning of a decoded Config, reporting through the
// checker that recorded each key's line.
type validator struct {
	*checker
}

// report records a problem at path, placed at the line of path or of its
// nearest parent present in the file.
func (v *validator) report(path, format string, args ...any) {
	line, p := 0, path
	for {
		if l, ok := v.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			line = v.lines[""]
			break
		}
		p = p[:i]
	}
	v.fail(line, path, format, args...)
}

func (v *validator) oneOf(path, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.report(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

func (v *validator) validate(c *Config) {
	switch {
	case c.Site == "":
		v.report("site", "is required")
	case !siteID.MatchString(c.Site):
		v.report("site", "%q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Site)
	}
	if c.Schema == "" {
		v.report("schema", "is required (the path of the schema file)")
	}
	v.validateStorage(c)
	v.validateAPI(&c.API)
}

func (v *validator) validateStorage(c *Config) {
	if len(c.Storage) == 0 {
		v.report("storage", "is required: name at least one storage, such as local: {type: badger, path: ./data/device}")
		return
	}
	names := make([]string, 0, len(c.Storage))
	for name := range c.Storage {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := "storage." + name
		if !componentName.MatchString(name) {
			v.report(path, "the name must match %s", componentName)
		}
		s := c.Storage[name]
		if s.Type == "" {
			v.report(path+".type", "is required (badger)")
		} else {
			v.oneOf(path+".type", s.Type, "badger")
		}
		if s.Badger.Path == "" {
			v.report(path+".path", "is required (the data folder)")
		}
		v.oneOf(path+".durability", s.Badger.Durability, badger.DurabilitySync, badger.DurabilityAsync)
		for _, f := range badgerFaults(s.Badger.Validate()) {
			v.report(join(path, f[0]), "%s", f[1])
		}
	}
	if _, _, ok := c.LocalStorage(); !ok {
		v.report("storage", "with several storages, the device's one must be named local")
	}
}

func (v *validator) validateAPI(a *APIConfig) {
	if a.Listen == "" && a.Socket == "" {
		v.report("api", "listen and socket are both empty: the API needs at least one")
	}
	if a.Listen != "" {
		if err := checkListen(a.Listen); err != nil {
			v.report("api.listen", "%q %v", a.Listen, err)
		}
	}
	if len(a.Socket) > maxSocketPath {
		v.report("api.socket", "is %d bytes long; a unix socket path may have at most %d", len(a.Socket), maxSocketPath)
	}
}

// checkListen checks that addr is a loopback host:port.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("is not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("has a bad port: want 0 to 65535")
	}
	if !isLoopback(host) {
		return fmt.Errorf("is not a loopback address (127.0.0.1, ::1 or localhost): the API has no authentication")
	}
	return nil
}
