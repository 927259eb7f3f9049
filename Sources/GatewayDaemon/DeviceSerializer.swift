import Foundation

/// Runs work one item at a time per device and devices side by side: a slow negotiation or fetch for one handset
/// holds only that handset's queue. The lock guards the queues only; it is never held while work runs.
/// Workers are threads of their own, at most `maxWorkers`: a GCD pool is as wide as the machine has cores, so two
/// stalled devices on a 2-core box would hold every other device back until GCD grew the pool. Past the bound,
/// devices with work wait in arrival order (`waitingDevices`) for the next free worker.
public final class DeviceSerializer: @unchecked Sendable {
    private let lock = NSLock()
    private var queues: [UInt64: [@Sendable () -> Void]] = [:]
    /// Devices with work and no worker yet, oldest first.
    private var ready: [UInt64] = []
    private var workers = 0
    private var running = 0
    /// When each device's running item started (uptime seconds): what a stuck drain reports.
    private var startedAt: [UInt64: Double] = [:]
    private let idle = NSCondition()
    public let maxWorkers: Int

    public init(maxWorkers: Int = 64) { self.maxWorkers = max(1, maxWorkers) }

    /// Items queued or running, over all devices.
    public var pending: Int { lock.withLock { running + queues.values.reduce(0) { $0 + $1.count } } }
    /// Devices whose work waits for a free worker.
    public var waitingDevices: Int { lock.withLock { ready.count } }

    /// Devices with an item running, longest-running first: for how long, and how many items wait behind it.
    public func busy() -> [(device: UInt64, seconds: Double, queued: Int)] {
        let now = ProcessInfo.processInfo.systemUptime
        return lock.withLock {
            startedAt.map { (device: $0.key, seconds: now - $0.value, queued: queues[$0.key]?.count ?? 0) }
        }.sorted { $0.seconds > $1.seconds }
    }

    /// Queues `work` behind the device's earlier work; a device that had none gets a worker, or waits for one.
    public func submit(device: UInt64, _ work: @escaping @Sendable () -> Void) {
        let start = lock.withLock { () -> Bool in
            if queues[device] != nil { queues[device]!.append(work); return false }
            queues[device] = [work]
            guard workers < maxWorkers else { ready.append(device); return false }
            workers += 1
            return true
        }
        if start {
            // Named from inside: on Linux a name set before start() never reaches the OS thread, which then keeps
            // its creator's (an event loop's) name in gdb and /proc.
            Thread {
                Thread.current.name = "device-worker"
                self.work(from: device)
            }.start()
        }
    }

    /// Drains one device, then takes the next waiting device, until none is left.
    private func work(from first: UInt64) {
        var device = first
        while true {
            while let item = next(of: device) {
                item()
                lock.withLock { running -= 1; startedAt[device] = nil }
                idle.broadcast()
            }
            guard let another = lock.withLock({ () -> UInt64? in
                if ready.isEmpty { workers -= 1; return nil }
                return ready.removeFirst()
            }) else { break }
            device = another
        }
        idle.broadcast()
    }

    private func next(of device: UInt64) -> (@Sendable () -> Void)? {
        lock.withLock {
            guard var q = queues[device], !q.isEmpty else { queues[device] = nil; return nil }
            let w = q.removeFirst()
            queues[device] = q
            running += 1
            startedAt[device] = ProcessInfo.processInfo.systemUptime
            return w
        }
    }

    /// Waits until nothing is queued or running, at most `timeout` seconds; true when it got there.
    public func waitIdle(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        idle.lock()
        defer { idle.unlock() }
        while pending > 0 {
            if !idle.wait(until: min(deadline, Date().addingTimeInterval(0.05))), Date() >= deadline { return pending == 0 }
        }
        return true
    }
}
