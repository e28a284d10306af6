package broker

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

// Reasons a connection is refused, the reason label of the metric.
const (
	refusedCredentials = "credentials"
	refusedClientID    = "client_id"
	refusedWill        = "will"
)

// aclHook authenticates clients and enforces the per-site ACL. Who a
// client acts as is derived from its username (or, when anonymous, its
// client id) on every check, so sessions restored from persistence and
// offline sessions are judged by the same rules, and nothing in a payload
// can change it.
type aclHook struct {
	mqtt.HookBase
	server    *mqtt.Server
	topics    Template
	users     map[string]userEntry
	anonymous bool
	maxPacket uint32
	log       *slog.Logger
	m         *metrics
}

// userEntry is a user with its password hashed, so comparisons take the
// same time whatever the password's length.
type userEntry struct {
	hash [sha256.Size]byte
	id   identity
}

func newACLHook(cfg *Config, topics Template, log *slog.Logger, m *metrics) *aclHook {
	h := &aclHook{topics: topics, users: map[string]userEntry{}, anonymous: cfg.Anonymous, maxPacket: uint32(cfg.MaxPacket), log: log, m: m}
	for _, u := range cfg.Users {
		h.users[u.Username] = userEntry{hash: sha256.Sum256([]byte(u.Password)), id: identity{cloud: u.IsCloud(), site: u.Site}}
	}
	return h
}

func (h *aclHook) ID() string { return "iotod-acl" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnSysInfoTick, mqtt.OnPacketEncode}, []byte{b})
}

// identify returns who a client with this username and client id acts
// as; ok is false when it may not connect at all.
func (h *aclHook) identify(username []byte, clientID string) (identity, bool) {
	if len(username) == 0 {
		if !h.anonymous || checkSite(clientID) != nil {
			return identity{}, false
		}
		return identity{site: clientID}, true
	}
	u, ok := h.users[string(username)]
	return u.id, ok
}

// OnConnectAuthenticate accepts a client whose credentials match a user,
// or one without credentials when anonymous and its client id is a site
// id. It refuses a will on a topic the client may not publish to (mochi
// sends wills without an ACL check) and a client id held by a session of
// another identity (taking it over would inherit its subscriptions).
func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := pk.Connect.Username, pk.Connect.Password
	id, ok := identity{}, false
	if len(user) == 0 && len(pass) == 0 {
		// The id the client chose, not one the broker assigns.
		id, ok = h.identify(nil, pk.Connect.ClientIdentifier)
	} else if u, known := h.users[string(user)]; known {
		sum := sha256.Sum256(pass)
		ok, id = subtle.ConstantTimeCompare(sum[:], u.hash[:]) == 1, u.id
	}
	if !ok {
		return h.refuse(cl, refusedCredentials)
	}
	if pk.Connect.WillFlag && !h.topics.allows(id, pk.Connect.WillTopic, true) {
		return h.refuse(cl, refusedWill)
	}
	if h.server != nil {
		if old, found := h.server.Clients.Get(cl.ID); found {
			if oldID, _ := h.identify(old.Properties.Username, old.ID); oldID != id {
				return h.refuse(cl, refusedClientID)
			}
		}
	}
	return true
}

func (h *aclHook) refuse(cl *mqtt.Client, reason string) bool {
	h.m.connectsRefused.WithLabelValues(reason).Inc()
	h.log.Debug("connection refused", "client", cl.ID, "username", string(cl.Properties.Username), "reason", reason)
	return false
}

// OnACLCheck allows a publish (write) or a subscription or delivery (read)
// when the client's identity may use the topic. Refused publishes are
// counted here; refused subscriptions in OnSubscribe.
func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id, ok := h.identify(cl.Properties.Username, cl.ID)
	allowed := ok && h.topics.allows(id, topic, write)
	if !allowed && write {
		h.m.refused.WithLabelValues("publish").Inc()
		h.log.Debug("publish refused", "client", cl.ID, "site", id.site, "topic", topic)
	}
	return allowed
}

// OnSubscribe counts the filters the ACL will refuse; mochi refuses them
// (reason code 0x87) through OnACLCheck.
func (h *aclHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	id, ok := h.identify(cl.Properties.Username, cl.ID)
	for _, sub := range pk.Filters {
		if !mqtt.IsValidFilter(sub.Filter, false) {
			continue
		}
		if !ok || !h.topics.allows(id, sub.Filter, false) {
			h.m.refused.WithLabelValues("subscribe").Inc()
			h.log.Debug("subscription refused", "client", cl.ID, "site", id.site, "filter", sub.Filter)
		}
	}
	return pk
}

// OnPacketEncode announces the maximum packet size in a successful
// CONNACK (MQTT v5): mochi enforces it without saying so, and a client
// that knows it refuses a larger publish instead of sending it and losing
// the connection.
func (h *aclHook) OnPacketEncode(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == packets.CodeSuccess.Code && h.maxPacket > 0 {
		pk.Properties.MaximumPacketSize = h.maxPacket
	}
	return pk
}

// OnSysInfoTick refreshes the clients gauge (mochi calls it each second).
func (h *aclHook) OnSysInfoTick(info *system.Info) {
	h.m.clients.Set(float64(atomic.LoadInt64(&info.ClientsConnected)))
}
