package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds one file's tree once its aliases are expanded, so a
// file of nested aliases cannot make the loader run out of memory.
const maxNodes = 100_000

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile reads one config file into a plain node tree: duplicate keys
// reported and dropped, aliases replaced by copies of what they name,
// merge keys (<<) folded in and variables expanded. Every node of the
// result is recorded as coming from file. It returns nil when the file
// cannot be used at all.
func (l *loader) parseFile(data []byte, file string) *yaml.Node {
	var doc, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.failAt(pos{file: file}, "", "the file is empty")
			return nil
		}
		p, msg := pos{file: file}, err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			p.line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		l.failAt(p, "", "%s", msg)
		return nil
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		l.failAt(pos{file: file, line: extra.Line}, "", "the file must hold one YAML document")
		return nil
	}
	if len(doc.Content) == 0 {
		l.failAt(pos{file: file}, "", "the file is empty")
		return nil
	}
	l.current = file
	root := doc.Content[0]
	l.dropDuplicates(root, "")
	budget := maxNodes
	root, err := unalias(root, &budget)
	if err != nil {
		l.failAt(pos{file: file, line: doc.Content[0].Line}, "", "%v", err)
		return nil
	}
	l.setOrigin(root, file)
	l.foldMerges(root, "")
	l.expandScalars(root, "")
	return root
}

// setOrigin records file as the origin of n and everything below it.
func (l *loader) setOrigin(n *yaml.Node, file string) {
	l.origin[n] = file
	for _, c := range n.Content {
		l.setOrigin(c, file)
	}
}

// dropDuplicates reports a key set twice in one mapping and keeps the
// first. It does not follow aliases: a fault is reported once, where it is
// written.
func (l *loader) dropDuplicates(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.dropDuplicates(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.MappingNode:
		seen := map[string]int{}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
				if first, dup := seen[k.Value]; dup {
					l.failAt(pos{file: l.current, line: k.Line}, p, "duplicate key (first set on line %d)", first)
					continue
				}
				seen[k.Value] = k.Line
			}
			l.dropDuplicates(v, p)
			kept = append(kept, k, v)
		}
		n.Content = kept
	}
}

// unalias returns a copy of n with every alias replaced by a copy of the
// node it names.
func unalias(n *yaml.Node, budget *int) (*yaml.Node, error) {
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("the file expands to more than %d values through its aliases", maxNodes)
	}
	if n.Kind == yaml.AliasNode {
		return unalias(n.Alias, budget)
	}
	cp := *n
	cp.Anchor = ""
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		var err error
		if cp.Content[i], err = unalias(c, budget); err != nil {
			return nil, err
		}
	}
	return &cp, nil
}

// foldMerges replaces each merge key (<<: *base, or a list of such) by
// the pairs of the mappings it names that the mapping does not set itself.
func (l *loader) foldMerges(n *yaml.Node, path string) {
	for i, c := range n.Content {
		p := path
		switch n.Kind {
		case yaml.SequenceNode:
			p = fmt.Sprintf("%s[%d]", path, i)
		case yaml.MappingNode:
			if i%2 == 0 {
				continue
			}
			p = join(path, n.Content[i-1].Value)
		}
		l.foldMerges(c, p)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	var own, sources []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			own = append(own, k, v)
			continue
		}
		switch {
		case v.Kind == yaml.MappingNode:
			sources = append(sources, v)
		case v.Kind == yaml.SequenceNode:
			for _, s := range v.Content {
				if s.Kind != yaml.MappingNode {
					l.failNode(s, path, "<< must name mappings")
					continue
				}
				sources = append(sources, s)
			}
		default:
			l.failNode(v, path, "<< must name a mapping or a list of mappings")
		}
	}
	if sources == nil {
		return
	}
	for _, s := range sources {
		for i := 0; i+1 < len(s.Content); i += 2 {
			if mappingValue(&yaml.Node{Kind: yaml.MappingNode, Content: own}, s.Content[i].Value) == nil {
				own = append(own, s.Content[i], s.Content[i+1])
			}
		}
	}
	n.Content = own
}

// merge lays src, from a later file, over dst: mappings merge key by key,
// deeply; anything else in src replaces what dst has.
func merge(dst, src *yaml.Node) *yaml.Node {
	if dst == nil || dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		return src
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := mappingIndex(dst, k.Value)
		if j < 0 {
			dst.Content = append(dst.Content, k, v)
			continue
		}
		old := dst.Content[j+1]
		if old.Kind != yaml.MappingNode || v.Kind != yaml.MappingNode {
			dst.Content[j] = k // the value's key is the one of the file it came from
		}
		dst.Content[j+1] = merge(old, v)
	}
	return dst
}

// mappingIndex returns the index of key's key node in mapping n, or -1.
func mappingIndex(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// mappingValue returns the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	if i := mappingIndex(n, key); i >= 0 {
		return n.Content[i+1]
	}
	return nil
}
