package pipeline

import "encoding/json"

// OwnerRoute names the site a cloud change goes to: the device its item's
// owner attribute (attr, for example deviceId) names, or Broadcast when
// the item has none, or when there is no item (a remove).
func OwnerRoute(attr string, c *Change) string {
	if attr == "" || len(c.Item) == 0 {
		return Broadcast
	}
	var item map[string]any
	if json.Unmarshal(c.Item, &item) != nil {
		return Broadcast
	}
	if site, ok := item[attr].(string); ok && site != "" {
		return site
	}
	return Broadcast
}
