"""The pure planner: desired + actual + recorded state -> Plan. No I/O."""
