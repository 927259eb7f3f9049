// The firmware's concrete driver: an ATDriver over a termios serial port. Defining it here also makes
// the embedded build specialise (and so check) the generic engine and driver.

public typealias SerialModemDriver = ATDriver<SerialPort>

extension ATDriver where Transport == SerialPort {
    /// Opens the modem's serial device (path as bytes, no NUL needed) and wraps it in a driver.
    /// Call `start()` next; `close()` releases the device.
    public static func open(pathBytes: UnsafeRawBufferPointer, baud: UInt32 = 115_200, rtscts: Bool = false,
                            dialect: ModemDialect = .generic) throws(ATError) -> ATDriver<SerialPort> {
        let port: SerialPort
        do {
            port = try SerialPort(pathBytes: pathBytes, baud: baud, rtscts: rtscts)
        } catch {
            throw .transport(error)
        }
        return ATDriver(transport: port, dialect: dialect)
    }

    public func close() { engine.transport.close() }
}
