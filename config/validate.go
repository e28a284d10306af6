package config

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/iotod/iotod/schema"
)

var (
	// siteID keeps a site id usable in MQTT topics and file names.
	siteID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// componentName is the form of storage, transport and pipeline names.
	componentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

// maxSocketPath is the longest unix socket path every platform accepts.
const maxSocketPath = 104

// report records a problem at path, placed at the line of path or of its
// nearest parent present in the files.
func (l *loader) report(path, format string, args ...any) {
	p := path
	for {
		if at, ok := l.lines[p]; ok {
			l.failAt(at, path, format, args...)
			return
		}
		i := max(strings.LastIndexByte(p, '.'), strings.LastIndexByte(p, '['))
		if i < 0 {
			l.failAt(l.lines[""], path, format, args...)
			return
		}
		p = p[:i]
	}
}

func (l *loader) oneOf(path, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		l.report(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

func (l *loader) checkSite(path, site string) {
	if !siteID.MatchString(site) {
		l.report(path, "%q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", site)
	}
}

// validate checks the meaning of a decoded Config.
func (l *loader) validate(c *Config) {
	if c.Site == "" {
		if !l.failed["site"] {
			l.report("site", "is required")
		}
	} else {
		l.checkSite("site", c.Site)
	}
	l.validateSchema(c.Schema)
	l.validateStorage(c)
	l.validateAPI(&c.API)
	l.validatePipelines(c)
}

func (l *loader) validateSchema(path string) {
	switch {
	case l.failed["schema"]:
	case path == "":
		l.report("schema", "is required (the path of the schema file)")
	default:
		st, err := os.Stat(path)
		switch {
		case err != nil && os.IsNotExist(err):
			l.report("schema", "%q does not exist (looked for %s)", l.schemaText, path)
		case err != nil:
			l.report("schema", "%v", err)
		case st.IsDir():
			l.report("schema", "%s is a folder, not a schema file", path)
		}
	}
}

func (l *loader) validateStorage(c *Config) {
	if len(c.Storage) == 0 {
		if !l.failed["storage"] {
			l.report("storage", "is required: name at least one storage, such as local: {type: badger, path: ./data/device}")
		}
		return
	}
	devices := 0
	for _, s := range c.Storage {
		if s.Side == schema.SideDevice {
			devices++
		}
	}
	if _, ok := c.Storage["local"]; !ok && devices > 1 {
		l.report("storage", "with several device storages, the device's own must be named local")
	}
}

func (l *loader) validateAPI(a *APIConfig) {
	if a.Listen == "" && a.Socket == "" {
		l.report("api", "listen and socket are both empty: the API needs at least one")
	}
	if a.Listen != "" {
		if err := checkListen(a.Listen); err != nil {
			l.report("api.listen", "%q %v", a.Listen, err)
		}
	}
	if len(a.Socket) > maxSocketPath {
		l.report("api.socket", "is %d bytes long; a unix socket path may have at most %d", len(a.Socket), maxSocketPath)
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
