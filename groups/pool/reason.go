package pool

// Reason says why a worker process was replaced. It is the reason field of
// the pool's log lines and the reason label of the restart metric, so both
// read the same words.
type Reason string

// The reasons a process is replaced.
const (
	ReasonMaximumRequests   Reason = "maximum-requests"
	ReasonRequestTimeout    Reason = "request-timeout"
	ReasonInactivityTimeout Reason = "inactivity-timeout"
	ReasonRestartInterval   Reason = "restart-interval"
	ReasonDeadlockTimeout   Reason = "deadlock-timeout" // killed: its interpreter was stuck
	ReasonDied              Reason = "died"             // exited, or was killed, unasked
	ReasonSignal            Reason = "restart-signal"   // Restart (SIGUSR1)
	ReasonReload            Reason = "reload"           // a reload changed its pool's settings
	ReasonWorkerRetired     Reason = "worker-retired"   // it stopped itself to reload a changed script
)

// Reasons lists every Reason, in the order above.
func Reasons() []Reason {
	return []Reason{ReasonMaximumRequests, ReasonRequestTimeout, ReasonInactivityTimeout,
		ReasonRestartInterval, ReasonDeadlockTimeout, ReasonDied, ReasonSignal, ReasonReload,
		ReasonWorkerRetired}
}

// reasonClose takes a process out of service when its pool closes: it is
// not replaced, so no metric counts it.
const reasonClose Reason = "close"
