"""The words the demo population uses: names, what customers write, what they browse.

Every entry is plain text without quotes, backslashes or control characters, so it can be
placed inside a JSON string without escaping (tests/demo checks this).
"""

from __future__ import annotations

__all__ = [
    "ARTICLES",
    "CANCEL_REASONS",
    "CAUSES",
    "COMPANY_INDUSTRIES",
    "COMPANY_WORDS",
    "DATA_FIELD_SETS",
    "ETHICS_TOPICS",
    "FEEDBACK_TOPICS",
    "FIRST_NAMES",
    "IDEAS",
    "LAST_NAMES",
    "NEGATIVE_PHRASES",
    "NETWORKS",
    "NEUTRAL_PHRASES",
    "PAGES",
    "POSITIVE_PHRASES",
    "PRODUCT_CATEGORIES",
    "RESOLUTIONS",
    "SCREENS",
    "SEARCH_QUERIES",
    "TICKET_TOPICS",
    "TIMEZONES",
]

FIRST_NAMES = (
    "anna",
    "ben",
    "clara",
    "david",
    "emma",
    "felix",
    "grace",
    "hugo",
    "isla",
    "jonas",
    "karin",
    "liam",
    "maya",
    "noah",
    "olivia",
    "paul",
    "quinn",
    "rosa",
    "sam",
    "tara",
    "umar",
    "vera",
    "will",
    "xena",
    "yusuf",
    "zoe",
    "amir",
    "bea",
    "chen",
    "dara",
    "elif",
    "femi",
    "gita",
    "hana",
    "ivan",
    "jade",
    "kofi",
    "lena",
    "marco",
    "nina",
)

LAST_NAMES = (
    "schmidt",
    "smith",
    "garcia",
    "muller",
    "rossi",
    "martin",
    "jones",
    "novak",
    "silva",
    "kowalski",
    "dubois",
    "jensen",
    "brown",
    "lopez",
    "fischer",
    "taylor",
    "nilsen",
    "costa",
    "weber",
    "walsh",
    "khan",
    "patel",
    "nguyen",
    "okafor",
    "tanaka",
    "berg",
    "moreau",
    "wilson",
    "santos",
    "meyer",
    "evans",
    "romano",
    "haddad",
    "larsen",
    "murphy",
    "wagner",
    "kim",
    "ali",
    "reyes",
    "hughes",
)

POSITIVE_PHRASES = (
    "Great quality and fast delivery, I will buy again",
    "The support team solved my problem in minutes",
    "Love the product, it does exactly what it promises",
    "Excellent value for money and friendly staff",
    "Really happy with my order, everything arrived in perfect condition",
    "The app makes reordering so easy",
    "I recommend this shop to all my friends",
    "Best customer service I have had in years",
    "Fantastic experience from start to finish",
    "The new features are brilliant and well thought out",
    "Very helpful advice in the store",
    "Quick refund and a kind apology, thank you",
)

NEUTRAL_PHRASES = (
    "The product is fine, nothing special",
    "Delivery took a few days longer than expected but it arrived",
    "Average experience overall",
    "It works as described",
    "Prices are similar to other shops",
    "The website is okay but could be faster",
    "I only bought it because it was on sale",
    "Not sure yet, I need to use it more",
    "Packaging was a bit excessive",
    "Decent but I have seen better",
)

NEGATIVE_PHRASES = (
    "My order arrived broken and nobody answered my emails",
    "Terrible support, I had to call three times",
    "The product stopped working after one week",
    "Too many marketing emails, please stop",
    "I was charged twice and still have no refund",
    "They called me late in the evening, very annoying",
    "Delivery was late again and the tracking was wrong",
    "The quality is much worse than before",
    "I cancelled because the service keeps getting worse",
    "Nobody resolved my complaint, very disappointed",
    "The app crashes every time I try to pay",
    "Hidden fees at checkout, I feel misled",
)

PAGES = (
    ("Home", "/"),
    ("Pricing", "/pricing"),
    ("Product", "/products"),
    ("Category", "/shop"),
    ("Cart", "/cart"),
    ("Checkout", "/checkout"),
    ("Help", "/help"),
    ("Blog", "/blog"),
    ("About", "/about"),
    ("Sustainability", "/sustainability"),
)

SCREENS = ("Home", "Product", "Cart", "Orders", "Account", "Settings")

PRODUCT_CATEGORIES = (
    "shoes",
    "jackets",
    "bags",
    "kitchen",
    "garden",
    "books",
    "toys",
    "electronics",
    "beauty",
    "sports",
)

SEARCH_QUERIES = (
    "running shoes",
    "rain jacket",
    "gift ideas",
    "coffee grinder",
    "yoga mat",
    "backpack",
    "wireless headphones",
    "kids toys",
    "garden hose",
    "sale",
    "organic cotton",
    "repair kit",
)

ARTICLES = (
    "How to choose the right running shoe",
    "Caring for your waxed jacket",
    "Ten gift ideas under 30 euros",
    "Our guide to home composting",
    "What our warranty covers",
    "Comparing our three coffee grinders",
    "Packing light for a weekend trip",
    "Size guide for kids clothing",
)

TICKET_TOPICS = (
    "delivery",
    "refund",
    "billing",
    "damaged item",
    "account access",
    "product question",
    "return",
    "missing item",
)

RESOLUTIONS = ("refund", "replacement", "explained", "fixed", "voucher", "escalated")

FEEDBACK_TOPICS = ("website", "app", "delivery", "product range", "prices", "packaging")

IDEAS = (
    "Offer a refill subscription",
    "Let me pick a delivery time slot",
    "Add a size recommendation to product pages",
    "Plastic free packaging option",
    "Repair service for worn shoes",
    "Dark mode in the app",
    "Loyalty points for returning packaging",
)

NETWORKS = ("linkedin", "instagram", "facebook", "x", "whatsapp", "email")

CAUSES = ("tree planting", "ocean cleanup", "local food bank", "clean water", "repair cafes")

ETHICS_TOPICS = ("sustainability", "sourcing", "privacy", "fair pay", "carbon footprint")

CANCEL_REASONS = ("too expensive", "not using it", "bad service", "found an alternative", "moving")

# Pre-encoded JSON arrays: the fields a customer shares or the company asks for.
DATA_FIELD_SETS = (
    '["birthday"]',
    '["preferences"]',
    '["birthday","preferences"]',
    '["size","preferences"]',
    '["address"]',
    '["phone","address"]',
    '["household_size","interests"]',
)

COMPANY_WORDS = (
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Aperture",
    "Gringotts",
    "Wonka",
    "Oceanic",
)

COMPANY_INDUSTRIES = ("retail", "hospitality", "education", "healthcare", "software", "logistics")

# (IANA name, share of customers); several observe daylight saving, so local times need the
# real offset at each instant (see troth/demo/period.py).
TIMEZONES = (
    ("Europe/London", 0.30),
    ("Europe/Berlin", 0.22),
    ("Europe/Paris", 0.10),
    ("Europe/Madrid", 0.06),
    ("America/New_York", 0.10),
    ("America/Los_Angeles", 0.05),
    ("Asia/Kolkata", 0.05),
    ("Australia/Sydney", 0.06),
    ("Asia/Tokyo", 0.06),
)
