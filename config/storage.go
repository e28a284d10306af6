package config

// StorageConfig is one entry of the storage map.
type StorageConfig struct {
	// Type is the storage engine; only "badger" for now.
	Type string `yaml:"type"`
	// Path is the data folder, relative to the config file's folder.
	Path string `yaml:"path"`
	// Durability is "sync" (a write is on disk when it returns; default) or
	// "async".
	Durability string `yaml:"durability"`

	_ struct{}
}

// newDefaultStorageConfig returns a storage entry holding every default.
func newDefaultStorageConfig() *StorageConfig {
	return &StorageConfig{Durability: "sync"}
}
