"""Local stand-ins that speak the documented API of systems that cannot run here."""
