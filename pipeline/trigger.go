package pipeline

import "time"

// TriggerDelivery is how a pipeline's triggers get their changes, from
// the queue the apply fills (docs/triggers.md).
type TriggerDelivery struct {
	Batch         int           `yaml:"batch" desc:"changes per trigger call (1 to 10000; default 100)"`
	Timeout       time.Duration `yaml:"timeout" desc:"time a trigger call may take (default 30s)"`
	Attempts      int           `yaml:"attempts" desc:"calls of a batch before it is set aside as dead (1 to 1000; default 8)"`
	RetryDelay    time.Duration `yaml:"retry_delay" desc:"first delay after a failed call, doubled per failure with full jitter (default 500ms)"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay" desc:"cap of the delay between calls (default 5m)"`

	_ struct{}
}

// DefaultTriggerDelivery is TriggerDelivery's defaults.
func DefaultTriggerDelivery() TriggerDelivery {
	return TriggerDelivery{Batch: 100, Timeout: 30 * time.Second, Attempts: 8, RetryDelay: 500 * time.Millisecond, MaxRetryDelay: 5 * time.Minute}
}
