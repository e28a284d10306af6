// Package e2e holds iotod's end-to-end tests: a device and the cloud run
// as separate `iotod run` processes (built once per test run) and talk
// through a real MQTT broker (the embedded one in a cloud process, or
// mosquitto when IOTOD_MOSQUITTO_URL is set). The tests kill and restart
// brokers, devices and cloud workers during write loads, replay raw
// batches, feed bad input on the wire, and run docs/quickstart.md. They
// are skipped under -short.
package e2e
