# Sourced by scripts/test and scripts/test-asan. Swift test suites that drive real daemons (a stock strongSwan in its
# own network namespace, the gateway's SMPP links, a PostgreSQL server of their own): they start processes and wait on sockets, so they run on their
# own, one at a time, not in parallel with the pty-timing suites (under that contention both sides time out).
SERVICE_TESTS='StrongSwanNegotiatorTests|StrongSwanNegotiatorCostTests|StrongSwanCertificateTests|StrongSwanVirtualIPTests|RelayLabTests|VICIClientLabTests|SMPPBridge|PostgresRegistryTests|RegistryCounterRaceTests|StrongSwanPostgresTests|StrongSwanTransportModeTests'
