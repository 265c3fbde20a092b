"""asyncssh, its one home: keys, host-key pinning, readiness, remote job runs, SFTP transfers."""
