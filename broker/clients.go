package broker

// Client is a client connected to the broker.
type Client struct {
	// ID is its client id, Username the user it logged in as ("" when
	// anonymous).
	ID       string
	Username string
}

// Connected lists the clients connected now (sessions kept for clients
// that are gone are not).
func (b *Broker) Connected() []Client {
	all := b.server.Clients.GetAll()
	out := make([]Client, 0, len(all))
	for _, cl := range all {
		if cl.Closed() || cl.Net.Inline {
			continue
		}
		out = append(out, Client{ID: cl.ID, Username: string(cl.Properties.Username)})
	}
	return out
}
