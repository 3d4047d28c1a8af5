package dns

// SystemServer lets tests read a resolv.conf other than the host's.
var SystemServer = systemServer
