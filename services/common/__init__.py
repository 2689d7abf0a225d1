"""What every gRPC service shares: the server runner, database pool and error mapping."""
