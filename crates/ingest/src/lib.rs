//! sagebridge ingest
