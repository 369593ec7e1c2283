"""What each agent does: plain classes that know nothing of Kafka or Faust."""
